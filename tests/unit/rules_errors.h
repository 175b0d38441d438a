/* SPDX-License-Identifier: MIT */
/*
 * The rule loader's error cases, one entry each, run by err_table in
 * test_rules.c: a name, the YAML text (one file), the expected "LINE:COL" of
 * the error ("" for the file alone) and words its message must hold. Each
 * case must fail to load with -EINVAL, leave the rule set untouched and
 * report the error as "FILE:LINE:COL: error: ...". Adding a case is adding
 * an entry.
 */
#ifndef TSG_TEST_RULES_ERRORS_H
#define TSG_TEST_RULES_ERRORS_H

struct ecase {
	const char *name;
	const char *yaml;
	const char *loc; /* "LINE:COL" or "" (file only) */
	const char *words[5];
};

static const struct ecase rules_errors[] = {
    {"unknown_top_key",
     "rule:\n  - name: x\n    when: {to: CLOSE}\n",
     "1:1",
     {"unknown field \"rule\"", "did you mean \"rules\"?"}},
    {"misspelled_field",
     "rules:\n"
     "  - name: slow\n"
     "    when: {state: SYN_SENT, longer_then: 500ms}\n",
     "3:29",
     {"unknown field \"longer_then\"", "when of rule \"slow\"", "did you mean \"longer_than\"?"}},
    {"misspelled_rule_field",
     "rules:\n"
     "  - name: slow\n"
     "    sumary: hi\n"
     "    when: {to: CLOSE}\n",
     "3:5",
     {"unknown field \"sumary\"", "did you mean \"summary\"?"}},
    {"wrong_type",
     "rules:\n"
     "  - name: tw\n"
     "    when: {state: TIME_WAIT, count_above: many, by: comm}\n",
     "3:43",
     {"bad value \"many\"", "count_above", "whole number"}},
    {"wrong_type_mapping",
     "rules:\n"
     "  - name: tw\n"
     "    labels: [edge]\n"
     "    when: {to: CLOSE}\n",
     "3:13",
     {"expected a mapping", "labels"}},
    {"bad_duration",
     "rules:\n"
     "  - name: slow\n"
     "    when:\n"
     "      state: SYN_SENT\n"
     "      longer_than: 5 mins\n",
     "5:20",
     {"bad duration \"5 mins\"", "longer_than", "ms, s, m or h"}},
    {"unknown_state",
     "rules:\n"
     "  - name: slow\n"
     "    when:\n"
     "      state: SYN_SNET\n"
     "      longer_than: 1s\n",
     "4:14",
     {"unknown state \"SYN_SNET\"", "ESTABLISHED", "did you mean \"SYN_SENT\"?"}},
    {"undefined_list",
     "rules:\n"
     "  - name: web\n"
     "    match: {rport: $web_prots}\n"
     "    when: {from: SYN_SENT, to: CLOSE}\n"
     "lists:\n"
     "  web_ports: [80, 443]\n",
     "3:20",
     {"undefined list \"$web_prots\"", "did you mean \"$web_ports\"?"}},
    {"undefined_action",
     "actions:\n"
     "  - {name: ops-log, type: syslog}\n"
     "rules:\n"
     "  - name: r\n"
     "    when: {to: CLOSE}\n"
     "    actions: [syslog, ops-lgo]\n",
     "6:23",
     {"undefined action \"ops-lgo\"", "did you mean \"ops-log\"?"}},
    {"bad_name",
     "rules:\n"
     "  - name: Slow_Connect\n"
     "    when: {to: CLOSE}\n",
     "2:11",
     {"bad rule name \"Slow_Connect\"", "[a-z0-9][a-z0-9_.-]*", "64"}},
    {"name_too_long",
     "rules:\n"
     "  - name: a234567890123456789012345678901234567890123456789012345678901234x\n"
     "    when: {to: CLOSE}\n",
     "2:11",
     {"bad rule name", "at most 64"}},
    {"two_when_kinds",
     "rules:\n"
     "  - name: two\n"
     "    when: {state: SYN_SENT, longer_than: 1s, count_above: 5, by: comm}\n",
     "3:46",
     {"\"count_above\" (a count rule)", "\"longer_than\" (a time rule)", "exactly one kind"}},
    {"missing_when_parts",
     "rules:\n"
     "  - name: tw\n"
     "    when: {state: TIME_WAIT, count_above: 5}\n",
     "3:11",
     {"a count rule needs by"}},
    {"missing_rate_parts",
     "rules:\n"
     "  - name: rt\n"
     "    when: {rate_above: 5, by: comm}\n",
     "3:11",
     {"a rate rule needs from and/or to, per"}},
    {"state_alone",
     "rules:\n"
     "  - name: st\n"
     "    when: {state: ESTABLISHED}\n",
     "3:12",
     {"\"state\" needs longer_than", "count_above"}},
    {"missing_when",
     "rules:\n"
     "  - name: nowhen\n"
     "    severity: info\n",
     "2:5",
     {"rule \"nowhen\" needs a when"}},
    {"by_on_time_rule",
     "rules:\n"
     "  - name: slow\n"
     "    when: {state: SYN_SENT, longer_than: 1s, by: comm}\n",
     "3:46",
     {"\"by\" is not allowed in a time rule", "key is the socket"}},
    {"for_on_time_rule",
     "rules:\n"
     "  - name: slow\n"
     "    when: {state: SYN_SENT, longer_than: 1s, for: 5s}\n",
     "3:46",
     {"\"for\" is not allowed in a time rule"}},
    {"template_unknown_field",
     "rules:\n"
     "  - name: slow\n"
     "    summary: \"{{comm}} waits for {{ rpot }}\"\n"
     "    when: {state: SYN_SENT, longer_than: 1s}\n",
     "3:37",
     {"unknown template field \"rpot\"", "summary", "did you mean \"rport\"?"}},
    {"template_unclosed",
     "rules:\n"
     "  - name: slow\n"
     "    summary: 'waits {{duration'\n"
     "    when: {state: SYN_SENT, longer_than: 1s}\n",
     "3:21",
     {"bad template for summary", "without a closing"}},
    {"template_field_unavailable",
     "rules:\n"
     "  - name: tw\n"
     "    summary: \"{{count}} in TIME_WAIT to {{raddr}}\"\n"
     "    when: {state: TIME_WAIT, count_above: 500, by: comm}\n",
     "3:14",
     {"summary of count rule \"tw\" uses {{raddr}}", "never have", "comm"}},
    {"template_summary_self",
     "rules:\n"
     "  - name: tw\n"
     "    summary: \"{{summary}}\"\n"
     "    when: {to: CLOSE}\n",
     "3:14",
     {"cannot use {{summary}}"}},
    {"template_undefined_label",
     "rules:\n"
     "  - name: tw\n"
     "    summary: \"{{labels.team}} {{comm}}\"\n"
     "    labels: {owner: ops}\n"
     "    when: {to: CLOSE}\n",
     "3:14",
     {"{{labels.team}}", "no label \"team\""}},
    {"action_field_unavailable",
     "actions:\n"
     "  - name: kick\n"
     "    type: exec\n"
     "    argv: [/usr/local/sbin/kick-peer, \"{{raddr}}\"]\n"
     "rules:\n"
     "  - name: tw\n"
     "    when: {state: TIME_WAIT, count_above: 500, by: comm}\n"
     "    actions: [syslog, kick]\n",
     "8:23",
     {"action \"kick\" uses {{raddr}}", "count rule \"tw\"", "never have"}},
    {"resolve_above_count",
     "rules:\n"
     "  - name: est\n"
     "    when: {state: ESTABLISHED, count_above: 800, resolve_below: 1000, by: comm}\n",
     "3:65",
     {"resolve_below (1000)", "count_above (800)"}},
    {"bad_cidr_prefix",
     "rules:\n"
     "  - name: c\n"
     "    match: {raddr: [10.0.0.0/8, 10.0.0.0/33]}\n"
     "    when: {to: CLOSE}\n",
     "3:42",
     {"bad prefix length in \"10.0.0.0/33\"", "/0 to /32"}},
    {"bad_address",
     "rules:\n"
     "  - name: c\n"
     "    match: {laddr: \"10.0.0.300\"}\n"
     "    when: {to: CLOSE}\n",
     "3:21",
     {"bad address \"10.0.0.300\"", "laddr", "CIDR"}},
    {"bad_port_range",
     "rules:\n"
     "  - name: p\n"
     "    match: {rport: \"9000-8000\"}\n"
     "    when: {to: CLOSE}\n",
     "3:21",
     {"bad port range \"9000-8000\"", "start 9000 is above the end 8000"}},
    {"bad_port",
     "rules:\n"
     "  - name: p\n"
     "    match: {lport: [80, 70000]}\n"
     "    when: {to: CLOSE}\n",
     "3:25",
     {"bad port \"70000\"", "0 to 65535"}},
    {"bad_port_in_list",
     "lists:\n"
     "  ports: [80, http]\n"
     "rules:\n"
     "  - name: p\n"
     "    match: {lport: $ports}\n"
     "    when: {to: CLOSE}\n",
     "2:15",
     {"bad port \"http\"", "(in list \"ports\")"}},
    {"bad_regex",
     "rules:\n"
     "  - name: re\n"
     "    match: {comm: {regex: \"ab(c\"}}\n"
     "    when: {to: CLOSE}\n",
     "3:32",
     {"bad regex \"ab(c\"", "at offset 4", "parenthesis"}},
    {"unquoted_exclusion",
     "rules:\n"
     "  - name: ex\n"
     "    match:\n"
     "      rport:\n"
     "        - 443\n"
     "        - !80\n"
     "    when: {to: CLOSE}\n",
     "6:11",
     {"YAML tag \"!80\"", "quoted"}},
    {"list_cycle",
     "lists:\n"
     "  a: [1, $b]\n"
     "  b: [2, $a]\n",
     "2:3",
     {"list \"a\" refers to itself"}},
    {"exclude_list_with_exclusions",
     "lists:\n"
     "  a: [1, \"!2\"]\n"
     "rules:\n"
     "  - name: ex\n"
     "    match: {rport: \"!$a\"}\n"
     "    when: {to: CLOSE}\n",
     "5:20",
     {"\"!$a\"", "holds exclusions"}},
    {"unknown_severity",
     "rules:\n"
     "  - name: s\n"
     "    severity: warnig\n"
     "    when: {to: CLOSE}\n",
     "3:15",
     {"unknown severity \"warnig\"", "did you mean \"warning\"?"}},
    {"comm_too_long",
     "rules:\n"
     "  - name: s\n"
     "    match: {comm: a-very-long-process-name}\n"
     "    when: {to: CLOSE}\n",
     "3:19",
     {"longer than 15 characters"}},
    {"by_unknown_field",
     "rules:\n"
     "  - name: s\n"
     "    when: {state: TIME_WAIT, count_above: 5, by: [comm, rprot]}\n",
     "3:57",
     {"unknown field \"rprot\" for by", "did you mean \"rport\"?"}},
    {"action_unknown_facility",
     "actions:\n"
     "  - name: l\n"
     "    type: syslog\n"
     "    facility: deamon\n",
     "4:15",
     {"unknown syslog facility \"deamon\"", "did you mean \"daemon\"?"}},
    {"action_unknown_type",
     "actions:\n"
     "  - name: l\n"
     "    type: webhok\n",
     "3:11",
     {"unknown action type \"webhok\"", "did you mean \"webhook\"?"}},
    {"action_field_of_other_type",
     "actions:\n"
     "  - name: l\n"
     "    type: syslog\n"
     "    url: http://x/\n",
     "4:5",
     {"unknown field \"url\"", "syslog action \"l\""}},
    {"action_bad_url",
     "actions:\n"
     "  - name: w\n"
     "    type: webhook\n"
     "    url: ftp://127.0.0.1/\n",
     "4:10",
     {"bad url \"ftp://127.0.0.1/\"", "http://", "https://"}},
    {"action_body_without_template",
     "actions:\n"
     "  - name: w\n"
     "    type: webhook\n"
     "    url: http://127.0.0.1/\n"
     "    format: json\n"
     "    body: '{{summary}}'\n",
     "6:11",
     {"body is only used with format: template"}},
    {"action_template_without_body",
     "actions:\n"
     "  - name: w\n"
     "    type: webhook\n"
     "    url: http://127.0.0.1/\n"
     "    format: template\n",
     "5:13",
     {"needs a body"}},
    {"action_relative_argv0",
     "actions:\n"
     "  - name: k\n"
     "    type: exec\n"
     "    argv: [kick-peer, \"{{raddr}}\"]\n",
     "4:12",
     {"argv[0] \"kick-peer\"", "absolute path"}},
    {"action_empty_argv",
     "actions:\n"
     "  - name: k\n"
     "    type: exec\n"
     "    argv: []\n",
     "4:11",
     {"non-empty list for argv"}},
    {"action_unknown_user",
     "actions:\n"
     "  - name: k\n"
     "    type: exec\n"
     "    argv: [/bin/true]\n"
     "    user: no-such-user-tsg\n",
     "5:11",
     {"unknown user \"no-such-user-tsg\""}},
    {"yaml_syntax",
     "rules:\n"
     "  - name: [oops\n"
     "    when: {to: CLOSE}\n",
     "3:9",
     {"YAML:"}},
    {"nested_too_deep",
     "rules: "
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     "1:71",
     {"nested deeper than 64 levels"}},
    /* A rule with a bad name still has its other errors reported. */
    {"bad_name_and_more",
     "rules:\n"
     "  - name: Bad_Name\n"
     "    when: {state: SYN_SNT, longer_than: 1s}\n",
     "3:19",
     {"unknown state \"SYN_SNT\""}},
    {"action_url_empty_list",
     "actions:\n  - name: w\n    type: webhook\n    url: []\n",
     "4:10",
     {"expected a URL or a list of 1 to 16 URLs for url"}},
    {"action_url_not_string",
     "actions:\n  - name: w\n    type: webhook\n    url: [http://a/, {host: b}]\n",
     "4:22",
     {"expected a URL for url"}},
    {"action_url_duplicate",
     "actions:\n  - name: w\n    type: webhook\n    url: [http://a/x, http://b/x, http://a/x]\n",
     "4:35",
     {"url \"http://a/x\" is listed twice"}},
    {"action_url_bad_in_list",
     "actions:\n  - name: w\n    type: webhook\n    url:\n      - http://a/x\n      - ftp://b/x\n",
     "6:9",
     {"bad url \"ftp://b/x\"", "http://", "https://"}},
    {"action_url_too_many",
     "actions:\n  - name: w\n    type: webhook\n"
     "    url: [http://a/1, http://a/2, http://a/3, http://a/4, http://a/5, "
     "http://a/6, http://a/7, http://a/8, http://a/9, http://a/10, "
     "http://a/11, http://a/12, http://a/13, http://a/14, http://a/15, "
     "http://a/16, http://a/17]\n",
     "4:10",
     {"a list of 1 to 16 URLs"}},
    {"container_prefix_too_short",
     "rules:\n  - name: c\n    match: {container: [abcdef123456, abc123]}\n    when: {to: CLOSE}\n",
     "3:39",
     {"container id prefix \"abc123\" is too short", "at least 12 characters"}},
    {"container_not_hex",
     "rules:\n  - name: c\n    match: {container: web-frontend-1}\n    when: {to: CLOSE}\n",
     "3:24",
     {"bad container \"web-frontend-1\"", "none"}},
    {"pod_not_a_uid",
     "rules:\n  - name: p\n    match: {pod: my-pod}\n    when: {to: CLOSE}\n",
     "3:18",
     {"bad pod \"my-pod\"", "pod UID"}},
    {"netns_bad_name",
     "rules:\n  - name: n\n    match: {netns: \"a/b\"}\n    when: {to: CLOSE}\n",
     "3:21",
     {"bad netns \"a/b\"", "host, a name under", "inode number"}},
    {"netns_regex",
     "rules:\n  - name: n\n    match: {netns: {regex: \"x.*\"}}\n    when: {to: CLOSE}\n",
     "3:29",
     {"{regex: ...} is only allowed for comm, not for netns"}},
    {"by_netns_name",
     "rules:\n  - name: b\n    when: {state: TIME_WAIT, count_above: 5, by: [netns_name]}\n",
     "3:51",
     {"netns_name is not a field for by", "use netns"}},
    {"queue_state_not_listen",
     "rules:\n  - name: q\n    when: {state: ESTABLISHED, queue_above: 5}\n",
     "3:19",
     {"queue rule", "state must be LISTEN", "not ESTABLISHED"}},
    {"queue_pct_zero",
     "rules:\n  - name: q\n    when: {state: LISTEN, queue_above: 0%}\n",
     "3:40",
     {"queue_above \"0%\"", "above 0% and at most 100%"}},
    {"queue_pct_above_100",
     "rules:\n  - name: q\n    when: {state: LISTEN, queue_above: \"150%\"}\n",
     "3:40",
     {"queue_above \"150%\"", "at most 100%"}},
    {"queue_pct_garbage",
     "rules:\n  - name: q\n    when: {state: LISTEN, queue_above: lots%}\n",
     "3:40",
     {"queue_above \"lots%\"", "percentage"}},
    {"queue_number_bad",
     "rules:\n  - name: q\n    when: {state: LISTEN, queue_above: many}\n",
     "3:40",
     {"bad value \"many\"", "queue_above", "whole number"}},
    {"queue_by_not_allowed",
     "rules:\n  - name: q\n    when: {state: LISTEN, queue_above: 5, by: lport}\n",
     "3:43",
     {"\"by\" is not allowed in a queue rule", "listening socket"}},
    {"queue_needs_state",
     "rules:\n  - name: q\n    when: {queue_above: 5}\n",
     "3:11",
     {"a queue rule needs state: LISTEN"}},
    {"queue_field_on_time_rule",
     "rules:\n  - name: t\n    summary: \"{{queue}}\"\n"
     "    when: {state: CLOSE_WAIT, longer_than: 1m}\n",
     "3:14",
     {"uses {{queue}}", "time rule \"t\""}},
    {"destroy_on_count_rule",
     "actions:\n  - {name: reap, type: destroy}\n"
     "rules:\n  - name: c\n    when: {state: CLOSE_WAIT, count_above: 5, by: comm}\n"
     "    actions: [reap]\n",
     "6:15",
     {"rule \"c\" cannot use action \"reap\" (destroy)", "count rule", "name a key"}},
    {"destroy_on_queue_rule",
     "actions:\n  - {name: reap, type: destroy}\n"
     "rules:\n  - name: q\n    when: {state: LISTEN, queue_above: 5}\n"
     "    actions: [reap]\n",
     "6:15",
     {"rule \"q\" cannot use action \"reap\" (destroy)", "queue rule",
      "close the listener itself"}},
    {"destroy_max_per_minute_zero",
     "actions:\n  - {name: reap, type: destroy, max_per_minute: 0}\n",
     "2:49",
     {"max_per_minute must be 1 to 100000"}},
    {"destroy_max_per_minute_too_big",
     "actions:\n  - {name: reap, type: destroy, max_per_minute: 100001}\n",
     "2:49",
     {"max_per_minute", "100000"}},
    {"destroy_unknown_field",
     "actions:\n  - {name: reap, type: destroy, max_per_min: 5}\n",
     "2:33",
     {"unknown field \"max_per_min\"", "did you mean \"max_per_minute\"?"}},
};

#endif
