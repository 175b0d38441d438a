/* SPDX-License-Identifier: MIT */
/*
 * tsguard: `rules:` (docs/rules.md "rules"): fields, the five kinds of `when`,
 * default summaries, template checks against what a rule's alerts have,
 * (the digest that tells a reload which rules are unchanged is digest.c).
 */
#include "load_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* ---- states and by ------------------------------------------------------- */

static int parse_state(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what)
{
	const char *s;
	char w[96], dym[96];
	int st;

	snprintf(w, sizeof(w), "a TCP state for %s", what);
	s = ld_scalar(L, f, n, w);
	if (!s)
		return -EINVAL;
	st = tsg_state_parse(s);
	if (st > 0)
		return st;
	ld_err(
	    L, f, n,
	    "unknown state \"%s\" for %s: expected ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, "
	    "FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING or NEW_SYN_RECV%s",
	    s, what, ld_dym(s, tsg_state_words(), dym, sizeof(dym)));
	return -EINVAL;
}

static int parse_states(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what,
			tsg_statemask *out)
{
	tsg_statemask m = 0;
	int r = 0;

	if (n && n->type == YAML_SEQUENCE_NODE) {
		if (n->data.sequence.items.start == n->data.sequence.items.top) {
			ld_err(L, f, n, "expected a state or a list of states for %s", what);
			return -EINVAL;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			int st = parse_state(L, f, ld_node(f, *i), what);

			if (st < 0)
				r = st;
			else
				m |= (tsg_statemask)(1u << st);
		}
	} else {
		int st = parse_state(L, f, n, what);

		if (st < 0)
			r = st;
		else
			m |= (tsg_statemask)(1u << st);
	}
	*out = m;
	return r;
}

static int parse_by1(struct ld *L, struct ld_file *f, yaml_node_t *n, uint32_t *by)
{
	const char *s = ld_scalar(L, f, n, "a field name for by");
	char dym[96];
	int sf;

	if (!s)
		return -EINVAL;
	sf = tsg_sfield_parse(s);
	if (sf < 0) {
		ld_err(L, f, n,
		       "unknown field \"%s\" for by: expected comm, pid, uid, cgroup, laddr, "
		       "lport, raddr, rport, family, netns, container or pod%s",
		       s, ld_dym(s, tsg_sfield_words(), dym, sizeof(dym)));
		return -EINVAL;
	}
	if (sf == TSG_SF_NETNS_NAME) {
		/* a name denotes one namespace at a time: the inode is the key */
		ld_err(L, f, n,
		       "netns_name is not a field for by: use netns (the name is in its alerts)");
		return -EINVAL;
	}
	*by |= TSG_HAVE(sf);
	return 0;
}

static int parse_by(struct ld *L, struct ld_file *f, yaml_node_t *n, uint32_t *by)
{
	int r = 0;

	*by = 0;
	if (n && n->type == YAML_SEQUENCE_NODE) {
		if (n->data.sequence.items.start == n->data.sequence.items.top) {
			ld_err(L, f, n, "expected a field or a list of fields for by");
			return -EINVAL;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++)
			if (parse_by1(L, f, ld_node(f, *i), by) < 0)
				r = -EINVAL;
		return r;
	}
	return parse_by1(L, f, n, by);
}

/* ---- when ---------------------------------------------------------------- */

static const char *const when_keys[] = { "from",	  "to",		   "state", "longer_than",
					 "count_above",	  "resolve_below", "by",    "for",
					 "rate_above",	  "per",	   "queue_above", NULL };
enum { WK_FROM, WK_TO, WK_STATE, WK_LONGER, WK_COUNT, WK_RESOLVE, WK_BY, WK_FOR, WK_RATE,
       WK_PER, WK_QUEUE, WK_N };

/* which when keys each kind allows */
static const uint32_t kind_allows[] = {
	[TSG_KIND_TRANSITION] = 1u << WK_FROM | 1u << WK_TO | 1u << WK_BY,
	[TSG_KIND_TIME] = 1u << WK_STATE | 1u << WK_LONGER,
	[TSG_KIND_COUNT] = 1u << WK_STATE | 1u << WK_COUNT | 1u << WK_RESOLVE | 1u << WK_BY |
			   1u << WK_FOR,
	[TSG_KIND_RATE] = 1u << WK_FROM | 1u << WK_TO | 1u << WK_RATE | 1u << WK_PER |
			  1u << WK_BY | 1u << WK_FOR,
	[TSG_KIND_QUEUE] = 1u << WK_STATE | 1u << WK_QUEUE | 1u << WK_FOR,
};
static const char *const kind_example[] = {
	[TSG_KIND_TRANSITION] = "{from: SYN_SENT, to: CLOSE}",
	[TSG_KIND_TIME] = "{state: SYN_SENT, longer_than: 500ms}",
	[TSG_KIND_COUNT] = "{state: TIME_WAIT, count_above: 500, by: comm}",
	[TSG_KIND_RATE] = "{from: SYN_SENT, to: CLOSE, rate_above: 50, per: 10s, by: raddr}",
	[TSG_KIND_QUEUE] = "{state: LISTEN, queue_above: 90%, for: 5s}",
};

/* The keys of a when as written: kn/vn from ld_map, and the keys that an
 * unknown key is close to (ld_guess), which count as present for the checks
 * that would only follow from their absence. */
struct when_keys {
	yaml_node_t *kn[WK_N], *vn[WK_N];
	uint64_t guessed;
	bool suppressed; /* an error was left out for a guessed key */
};

static bool wk_has(struct when_keys *w, int k)
{
	if (w->kn[k])
		return true;
	if (LD_GUESSED(w->guessed, k)) {
		w->suppressed = true;
		return true;
	}
	return false;
}

/* A kind whose defining key is written; else a guessed one that allows every
 * written key; else transition. -EINVAL (diagnosed) for two kinds. */
static int when_kind(struct ld *L, struct ld_file *f, struct when_keys *w)
{
	static const int kind_key[TSG_KIND_N] = {-1, WK_LONGER, WK_COUNT, WK_RATE, WK_QUEUE};
	int first = -1;

	for (int k = TSG_KIND_TIME; k < TSG_KIND_N; k++) {
		if (!w->kn[kind_key[k]])
			continue;
		if (first < 0) {
			first = k;
			continue;
		}
		ld_err(L, f, w->kn[kind_key[k]],
		       "\"%s\" (a %s rule) cannot be combined with \"%s\" (a %s rule): a when has "
		       "exactly one kind",
		       when_keys[kind_key[k]], tsg_kind_name(k), when_keys[kind_key[first]],
		       tsg_kind_name(first));
		return -EINVAL;
	}
	if (first >= 0)
		return first;
	for (int k = TSG_KIND_TIME; k < TSG_KIND_N; k++) {
		bool fits = LD_GUESSED(w->guessed, kind_key[k]);

		for (int i = 0; fits && i < WK_N; i++)
			if (w->kn[i] && !(kind_allows[k] & (1u << i)))
				fits = false;
		if (fits) {
			w->suppressed = true;
			return k;
		}
	}
	return TSG_KIND_TRANSITION;
}

/* Written keys that the kind does not allow. */
static int when_disallowed(struct ld *L, struct ld_file *f, const struct when_keys *w, int kind)
{
	int rc = 0;

	for (int k = 0; k < WK_N; k++) {
		yaml_node_t *kn = w->kn[k];

		if (!kn || (kind_allows[kind] & (1u << k)))
			continue;
		if (k == WK_BY && kind == TSG_KIND_TIME)
			ld_err(L, f, kn,
			       "\"by\" is not allowed in a time rule (when with longer_than): its "
			       "key is the socket");
		else if (k == WK_BY && kind == TSG_KIND_QUEUE)
			ld_err(L, f, kn,
			       "\"by\" is not allowed in a queue rule (when with queue_above): its "
			       "key is the listening socket");
		else if (kind == TSG_KIND_TRANSITION && k == WK_STATE)
			ld_err(L, f, kn,
			       "\"state\" needs longer_than (time in state: %s) or count_above "
			       "(count: %s)",
			       kind_example[TSG_KIND_TIME], kind_example[TSG_KIND_COUNT]);
		else if (kind == TSG_KIND_TRANSITION && (k == WK_FOR || k == WK_RESOLVE || k == WK_PER))
			ld_err(L, f, kn,
			       "\"%s\" is not allowed in a transition rule; it qualifies "
			       "count_above or rate_above",
			       when_keys[k]);
		else
			ld_err(L, f, kn, "\"%s\" is not allowed in a %s rule (e.g. when: %s)",
			       when_keys[k], tsg_kind_name(kind), kind_example[kind]);
		rc = -EINVAL;
	}
	return rc;
}

/* The keys the kind needs; a guessed key counts as written. */
static int when_required(struct ld *L, struct ld_file *f, yaml_node_t *n, struct when_keys *w,
			 const struct tsg_rule *r)
{
	char miss[64] = "";

	switch (r->kind) {
	case TSG_KIND_TRANSITION:
		if (w->kn[WK_FROM] || w->kn[WK_TO] || w->kn[WK_STATE] || wk_has(w, WK_FROM) ||
		    wk_has(w, WK_TO) || wk_has(w, WK_STATE))
			return 0;
		ld_err(L, f, n,
		       "when of rule \"%s\" needs a condition: from/to (transition), state + "
		       "longer_than (time), state + count_above + by (count) or from/to + "
		       "rate_above + per + by (rate) or state: LISTEN + queue_above (queue)",
		       r->name);
		return -EINVAL;
	case TSG_KIND_TIME:
		if (wk_has(w, WK_STATE))
			return 0;
		ld_err(L, f, n, "a time rule needs state (e.g. when: %s)", kind_example[r->kind]);
		return -EINVAL;
	case TSG_KIND_QUEUE:
		if (wk_has(w, WK_STATE))
			return 0;
		ld_err(L, f, n, "a queue rule needs state: LISTEN (e.g. when: %s)",
		       kind_example[r->kind]);
		return -EINVAL;
	case TSG_KIND_COUNT: {
		bool st = wk_has(w, WK_STATE), by = wk_has(w, WK_BY);

		if (st && by)
			return 0;
		ld_err(L, f, n, "a count rule needs %s (e.g. when: %s)",
		       !st && !by ? "state and by"
		       : !st	  ? "state"
				  : "by",
		       kind_example[r->kind]);
		return -EINVAL;
	}
	default:
		if (!w->kn[WK_FROM] && !w->kn[WK_TO] && !wk_has(w, WK_FROM) && !wk_has(w, WK_TO))
			strcat(miss, "from and/or to");
		if (!wk_has(w, WK_PER))
			strcat(strcat(miss, miss[0] ? ", " : ""), "per");
		if (!wk_has(w, WK_BY))
			strcat(strcat(miss, miss[0] ? ", " : ""), "by");
		if (!miss[0])
			return 0;
		ld_err(L, f, n, "a rate rule needs %s (e.g. when: %s)", miss,
		       kind_example[r->kind]);
		return -EINVAL;
	}
}

/* queue_above: N (a number of connections) or "P%" (0 < P <= 100, of the backlog). */
static int parse_queue_above(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r)
{
	const char *s;
	size_t len;
	char *end;
	double p;

	if (n && n->type == YAML_SCALAR_NODE && n->data.scalar.length &&
	    n->data.scalar.value[n->data.scalar.length - 1] != '%')
		return ld_uint(L, f, n, "queue_above", UINT32_MAX, &r->threshold);
	s = ld_scalar(L, f, n, "a number or a percentage (\"90%\") for queue_above");
	if (!s)
		return -EINVAL;
	len = strlen(s);
	errno = 0;
	p = strtod(s, &end);
	if (errno || end != s + len - 1 || !(p > 0 && p <= 100) || s[0] == ' ') {
		ld_err(L, f, n,
		       "queue_above \"%s\": a percentage must be above 0%% and at most 100%% "
		       "(e.g. \"90%%\")",
		       s);
		return -EINVAL;
	}
	r->queue_pct_x100 = (uint32_t)(p * 100 + 0.5);
	if (!r->queue_pct_x100)
		r->queue_pct_x100 = 1;
	return 0;
}

/* The values of the written keys. */
static int when_values(struct ld *L, struct ld_file *f, const struct when_keys *w,
		       struct tsg_rule *r)
{
	yaml_node_t *const *kn = w->kn, *const *vn = w->vn;
	int rc = 0;

	if (kn[WK_FROM] && parse_states(L, f, vn[WK_FROM], "from", &r->from) < 0)
		rc = -EINVAL;
	if (kn[WK_TO] && parse_states(L, f, vn[WK_TO], "to", &r->to) < 0)
		rc = -EINVAL;
	if (kn[WK_STATE] && r->kind != TSG_KIND_TRANSITION) {
		int st = parse_state(L, f, vn[WK_STATE], "state");

		if (st < 0) {
			rc = -EINVAL;
		} else if (r->kind == TSG_KIND_QUEUE && st != TSG_LISTEN) {
			ld_err(L, f, vn[WK_STATE],
			       "a queue rule watches listening sockets: state must be LISTEN, not %s",
			       tsg_state_name(st));
			rc = -EINVAL;
		} else {
			r->state = (uint8_t)st;
		}
	}
	if (kn[WK_QUEUE] && parse_queue_above(L, f, vn[WK_QUEUE], r) < 0)
		rc = -EINVAL;
	if (kn[WK_LONGER] &&
	    ld_duration(L, f, vn[WK_LONGER], "longer_than", true, &r->longer_than_ns) < 0)
		rc = -EINVAL;
	if (kn[WK_COUNT] &&
	    ld_uint(L, f, vn[WK_COUNT], "count_above", UINT32_MAX, &r->threshold) < 0)
		rc = -EINVAL;
	if (kn[WK_RATE] && ld_uint(L, f, vn[WK_RATE], "rate_above", UINT32_MAX, &r->threshold) < 0)
		rc = -EINVAL;
	r->resolve_below = r->threshold;
	if (kn[WK_RESOLVE] && r->kind == TSG_KIND_COUNT) {
		if (ld_uint(L, f, vn[WK_RESOLVE], "resolve_below", UINT32_MAX, &r->resolve_below) < 0) {
			rc = -EINVAL;
		} else if (kn[WK_COUNT] && r->resolve_below > r->threshold) {
			ld_err(L, f, vn[WK_RESOLVE],
			       "resolve_below (%llu) must not be above count_above (%llu)",
			       (unsigned long long)r->resolve_below,
			       (unsigned long long)r->threshold);
			rc = -EINVAL;
		}
	}
	if (kn[WK_PER] && ld_duration(L, f, vn[WK_PER], "per", true, &r->per_ns) < 0)
		rc = -EINVAL;
	if (kn[WK_FOR] && ld_duration(L, f, vn[WK_FOR], "for", false, &r->for_ns) < 0)
		rc = -EINVAL;
	if (kn[WK_BY] && r->kind != TSG_KIND_TIME && r->kind != TSG_KIND_QUEUE &&
	    parse_by(L, f, vn[WK_BY], &r->by) < 0)
		rc = -EINVAL;
	return rc;
}

/* A when: its kind, the keys that kind allows and needs, their values. An
 * unknown key close to a key the when lacks is the one error reported for
 * it (ld_map); what only follows from that key's absence is left out, and
 * the when is still invalid. */
static int ld_when(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r)
{
	struct when_keys w = {0};
	char what[128];
	int kind, rc;

	snprintf(what, sizeof(what), "when of rule \"%s\"", r->name);
	if (!ld_map(L, f, n, what, when_keys, w.kn, w.vn))
		return -EINVAL;
	w.guessed = ld_guess(f, n, when_keys);
	kind = when_kind(L, f, &w);
	if (kind < 0)
		return kind;
	r->kind = kind;
	rc = when_disallowed(L, f, &w, kind);
	if (when_required(L, f, n, &w, r) < 0)
		rc = -EINVAL;
	if (when_values(L, f, &w, r) < 0)
		rc = -EINVAL;
	return rc < 0 || w.suppressed ? -EINVAL : 0;
}

/* ---- summaries and template checks ---------------------------------------------- */

static void mask_names(tsg_statemask m, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	if (!m) {
		snprintf(buf, len, "any");
		return;
	}
	for (int st = 1; st < TSG_NSTATES && o < len; st++) {
		if (!(m & (1u << st)))
			continue;
		int w = snprintf(buf + o, len - o, "%s%s", o ? "|" : "", tsg_state_name(st));

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static int default_summary(struct tsg_rule *r)
{
	char buf[512], from[160], to[160], per[32];
	const char *msg;
	size_t off;

	switch (r->kind) {
	case TSG_KIND_TRANSITION:
		snprintf(buf, sizeof(buf),
			 "{{comm}} ({{pid}}) {{laddr}}:{{lport}} -> {{raddr}}:{{rport}} {{from}} -> {{to}}");
		break;
	case TSG_KIND_TIME:
		snprintf(buf, sizeof(buf),
			 "{{comm}} ({{pid}}) {{laddr}}:{{lport}} -> {{raddr}}:{{rport}} in {{state}} for {{duration}}");
		break;
	case TSG_KIND_COUNT:
		snprintf(buf, sizeof(buf), "{{count}} sockets in {{state}} for {{key}}");
		break;
	case TSG_KIND_QUEUE:
		snprintf(buf, sizeof(buf),
			 "{{comm}} ({{pid}}) {{laddr}}:{{lport}}: accept queue {{queue}} of "
			 "{{backlog}}, {{drops}} dropped");
		break;
	default:
		mask_names(r->from, from, sizeof(from));
		mask_names(r->to, to, sizeof(to));
		snprintf(buf, sizeof(buf), "{{count}} transitions %s -> %s within %s for {{key}}",
			 from, to, tsg_duration_format(r->per_ns, per, sizeof(per)));
		break;
	}
	return tsg_template_parse(buf, &r->summary, &off, &msg);
}

static void fields_list(uint32_t m, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (int tf = 0; tf < TSG_TF_N && o < len; tf++) {
		int w;

		if (!(m & (1u << tf)))
			continue;
		w = snprintf(buf + o, len - o, "%s%s%s", o ? " " : "", tsg_tfield_name(tf),
			     tf == TSG_TF_LABEL ? ".NAME" : "");
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static bool has_label(const struct tsg_rule *r, const char *name)
{
	for (size_t i = 0; i < r->nlabels; i++)
		if (!strcmp(r->labels[i].name, name))
			return true;
	return false;
}

static void check_summary(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r)
{
	uint32_t miss = r->summary.fields_used & ~r->fields_avail;
	char have[512];

	if (r->summary.fields_used & (1u << TSG_TF_SUMMARY)) {
		ld_err(L, f, n, "the summary of rule \"%s\" cannot use {{summary}} (itself)", r->name);
		miss &= ~(1u << TSG_TF_SUMMARY);
	}
	fields_list(r->fields_avail, have, sizeof(have));
	for (int tf = 0; tf < TSG_TF_N; tf++)
		if (miss & (1u << tf))
			ld_err(L, f, n,
			       "summary of %s rule \"%s\" uses {{%s}}, which its alerts never have "
			       "(they have: %s)",
			       tsg_kind_name(r->kind), r->name, tsg_tfield_name(tf), have);
	for (size_t i = 0; i < r->summary.nlabels_used; i++)
		if (!has_label(r, r->summary.labels_used[i]))
			ld_err(L, f, n, "summary uses {{labels.%s}} but rule \"%s\" has no label \"%s\"",
			       r->summary.labels_used[i], r->name, r->summary.labels_used[i]);
}

static void check_action(struct ld *L, struct ld_file *f, yaml_node_t *n,
			 const struct tsg_rule *r, const struct tsg_action_def *a)
{
	uint32_t miss = a->fields_used & ~r->fields_avail;
	char have[512];

	if (a->type == TSG_ACT_DESTROY && r->kind != TSG_KIND_TIME &&
	    r->kind != TSG_KIND_TRANSITION)
		ld_err(L, f, n,
		       "rule \"%s\" cannot use action \"%s\" (destroy): it closes the one socket "
		       "an alert names, and alerts of a %s rule %s; destroy is for time in state "
		       "and transition rules",
		       r->name, a->name, tsg_kind_name(r->kind),
		       r->kind == TSG_KIND_QUEUE ? "name a listening socket (destroying it would "
						   "close the listener itself)"
						 : "name a key, not a socket");
	fields_list(r->fields_avail, have, sizeof(have));
	for (int tf = 0; tf < TSG_TF_N; tf++)
		if (miss & (1u << tf))
			ld_err(L, f, n,
			       "action \"%s\" uses {{%s}}, which alerts of %s rule \"%s\" never "
			       "have (they have: %s)",
			       a->name, tsg_tfield_name(tf), tsg_kind_name(r->kind), r->name, have);
	for (size_t i = 0; i < a->nlabels_used; i++)
		if (!has_label(r, a->labels_used[i]))
			ld_err(L, f, n, "action \"%s\" uses {{labels.%s}} but rule \"%s\" has no label \"%s\"",
			       a->name, a->labels_used[i], r->name, a->labels_used[i]);
}

/* ---- one rule ---------------------------------------------------------------- */

static const char *const rule_keys[] = { "name",   "description", "summary", "severity",
					 "enabled", "labels",	   "match",   "when",
					 "cooldown", "actions",	   NULL };
enum { RK_NAME, RK_DESC, RK_SUMMARY, RK_SEV, RK_ENABLED, RK_LABELS, RK_MATCH, RK_WHEN,
       RK_COOLDOWN, RK_ACTIONS, RK_N };

static bool label_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > TSG_NAME_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

static int ld_labels(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r)
{
	size_t cnt;
	int rc = 0;

	if (!n || n->type != YAML_MAPPING_NODE) {
		ld_err(L, f, n, "expected a mapping of label names to values for labels (e.g. {team: edge})");
		return -EINVAL;
	}
	cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	r->labels = calloc(cnt ? cnt : 1, sizeof(*r->labels));
	if (!r->labels)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = ld_node(f, p->key), *v = ld_node(f, p->value);
		const char *ks = ld_scalar(L, f, k, "a label name");
		const char *vs;

		if (!ks) {
			rc = -EINVAL;
			continue;
		}
		if (!label_name_ok(ks)) {
			ld_err(L, f, k, "bad label name \"%s\": expected [a-zA-Z_][a-zA-Z0-9_]*", ks);
			rc = -EINVAL;
			continue;
		}
		if (has_label(r, ks)) {
			ld_err(L, f, k, "duplicate label \"%s\"", ks);
			rc = -EINVAL;
			continue;
		}
		if (!v || v->type != YAML_SCALAR_NODE) {
			ld_err(L, f, v, "expected a string for label %s", ks);
			rc = -EINVAL;
			continue;
		}
		vs = (const char *)v->data.scalar.value;
		r->labels[r->nlabels].name = strdup(ks);
		r->labels[r->nlabels].value = strdup(vs);
		if (!r->labels[r->nlabels].name || !r->labels[r->nlabels].value) {
			free(r->labels[r->nlabels].name);
			free(r->labels[r->nlabels].value);
			return -ENOMEM;
		}
		r->nlabels++;
	}
	return rc;
}

static const struct tsg_rule *find_rule(struct ld *L, const char *name)
{
	for (size_t i = 0; i < L->rs->nrules; i++)
		if (!strcmp(L->rs->rules[i].name, name))
			return &L->rs->rules[i];
	return NULL;
}

static int find_action_idx(struct ld *L, const char *name)
{
	for (size_t i = 0; i < L->rs->nactions; i++)
		if (!strcmp(L->rs->actions[i].name, name))
			return (int)i;
	return -1;
}

static int ld_rule_actions(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r,
			   yaml_node_t ***nodes_out)
{
	yaml_node_t *one[1] = { n }, **items;
	size_t cnt;
	int rc = 0;

	if (n && n->type == YAML_SEQUENCE_NODE) {
		cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	} else if (n && n->type == YAML_SCALAR_NODE && !ld_is_null(n)) {
		cnt = 1;
	} else {
		ld_err(L, f, n, "expected a list of action names for actions (e.g. [syslog])");
		return -EINVAL;
	}
	items = calloc(cnt ? cnt : 1, sizeof(*items));
	r->actions = calloc(cnt ? cnt : 1, sizeof(*r->actions));
	if (!items || !r->actions) {
		free(items);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *in = n->type == YAML_SEQUENCE_NODE
					  ? ld_node(f, n->data.sequence.items.start[i])
					  : one[0];
		const char *s = ld_scalar(L, f, in, "an action name");
		int idx;

		if (!s) {
			rc = -EINVAL;
			continue;
		}
		idx = find_action_idx(L, s);
		if (idx < 0) {
			const char **cands = calloc(L->rs->nactions + 1, sizeof(*cands));
			char dym[128] = "";

			if (cands) {
				for (size_t j = 0; j < L->rs->nactions; j++)
					cands[j] = L->rs->actions[j].name;
				ld_dym(s, cands, dym, sizeof(dym));
			}
			free(cands);
			ld_err(L, f, in, "undefined action \"%s\" in rule \"%s\"%s", s, r->name, dym);
			rc = -EINVAL;
			continue;
		}
		for (size_t j = 0; j < r->nactions; j++) {
			if (r->actions[j] == (size_t)idx) {
				ld_err(L, f, in, "action \"%s\" is listed twice", s);
				rc = -EINVAL;
				idx = -1;
				break;
			}
		}
		if (idx < 0)
			continue;
		items[r->nactions] = in;
		r->actions[r->nactions++] = (size_t)idx;
	}
	*nodes_out = items;
	return rc;
}

/* One rule being read: its YAML keys, what is wrong so far. */
struct rule_rd {
	struct ld *L;
	struct ld_file *f;
	yaml_node_t *rn, *kn[RK_N], *vn[RK_N], **act_nodes;
	struct tsg_rule r;
	bool bad, when_ok;
};

/* Its name, unique across the set: 0, or -EINVAL (diagnosed) when the rule
 * cannot be read on. A bad name is reported and the rest checked anyway, so
 * that one run lists every error (the set is rejected). */
static int rule_name(struct rule_rd *d, const char **out)
{
	struct ld *L = d->L;
	yaml_node_t *name_node = NULL;
	const struct tsg_rule *prev;
	const char *name;
	char what[128];

	for (yaml_node_pair_t *p = d->rn->data.mapping.pairs.start;
	     p < d->rn->data.mapping.pairs.top; p++) {
		yaml_node_t *k = ld_node(d->f, p->key);

		if (k && k->type == YAML_SCALAR_NODE && !name_node &&
		    !strcmp((const char *)k->data.scalar.value, "name"))
			name_node = ld_node(d->f, p->value);
	}
	name = name_node ? ld_name(L, d->f, name_node, "rule") : NULL;
	if (!name_node && !LD_GUESSED(ld_guess(d->f, d->rn, rule_keys), RK_NAME))
		ld_err(L, d->f, d->rn, "a rule needs a name");
	snprintf(what, sizeof(what), "rule \"%s\"", name ? name : "?");
	ld_map(L, d->f, d->rn, what, rule_keys, d->kn, d->vn);
	if (!name && name_node && name_node->type == YAML_SCALAR_NODE) {
		name = (const char *)name_node->data.scalar.value;
		d->bad = true;
	}
	if (!name)
		return -EINVAL;
	prev = find_rule(L, name);
	if (prev) {
		ld_err(L, d->f, name_node, "duplicate rule name \"%s\" (first defined at %s:%d:%d)",
		       name, prev->file, prev->line, prev->col);
		return -EINVAL;
	}
	*out = name;
	return 0;
}

/* A field's result: -ENOMEM goes up, another error marks the rule bad. */
static int rule_check(struct rule_rd *d, int r)
{
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		d->bad = true;
	return 0;
}

static int rule_severity(struct rule_rd *d, yaml_node_t *n)
{
	static const char *const sevs[] = {"emergency", "alert", "critical", "error", "warning",
					   "notice",	"info",	 "debug",    NULL};
	const char *s = ld_scalar(d->L, d->f, n, "a severity");
	int sev = s ? tsg_severity_parse(s) : -EINVAL;
	char dym[96];

	if (s && sev < 0)
		ld_err(d->L, d->f, n,
		       "unknown severity \"%s\": expected emergency, alert, critical, error, "
		       "warning, notice, info or debug%s",
		       s, ld_dym(s, sevs, dym, sizeof(dym)));
	if (sev < 0)
		return -EINVAL;
	d->r.severity = sev;
	return 0;
}

/* The fields before when: description, severity, enabled, labels, match. */
static int rule_fields(struct rule_rd *d)
{
	struct ld *L = d->L;
	struct ld_file *f = d->f;
	yaml_node_t **kn = d->kn, **vn = d->vn;

	if (vn[RK_DESC]) {
		const char *s = ld_scalar(L, f, vn[RK_DESC], "a string for description");

		if (!s)
			d->bad = true;
		else if (!(d->r.description = strdup(s)))
			return -ENOMEM;
	}
	if (vn[RK_SEV] && rule_severity(d, vn[RK_SEV]) < 0)
		d->bad = true;
	if (vn[RK_ENABLED] &&
	    rule_check(d, ld_bool(L, f, vn[RK_ENABLED], "enabled", &d->r.enabled)))
		return -ENOMEM;
	if (kn[RK_LABELS] && rule_check(d, ld_labels(L, f, vn[RK_LABELS], &d->r)))
		return -ENOMEM;
	/* `match:` with nothing: every socket */
	if (kn[RK_MATCH] && !ld_is_null(vn[RK_MATCH]) &&
	    rule_check(d, ld_match(L, f, vn[RK_MATCH], d->r.name, &d->r.match)))
		return -ENOMEM;
	return 0;
}

/* when, cooldown and actions (default [syslog]). */
static int rule_when_actions(struct rule_rd *d)
{
	struct ld *L = d->L;
	struct ld_file *f = d->f;
	yaml_node_t **kn = d->kn, **vn = d->vn;
	int rc;

	if (!kn[RK_WHEN]) {
		if (!LD_GUESSED(ld_guess(f, d->rn, rule_keys), RK_WHEN))
			ld_err(L, f, d->rn,
			       "rule \"%s\" needs a when (e.g. when: {state: SYN_SENT, "
			       "longer_than: 500ms})",
			       d->r.name);
		d->when_ok = false;
	} else {
		rc = ld_when(L, f, vn[RK_WHEN], &d->r);
		if (rc == -ENOMEM)
			return rc;
		d->when_ok = rc == 0;
	}
	if (vn[RK_COOLDOWN] &&
	    rule_check(d, ld_duration(L, f, vn[RK_COOLDOWN], "cooldown", false, &d->r.cooldown_ns)))
		return -ENOMEM;
	if (kn[RK_ACTIONS])
		return rule_check(d, ld_rule_actions(L, f, vn[RK_ACTIONS], &d->r, &d->act_nodes));
	d->r.actions = calloc(1, sizeof(*d->r.actions));
	if (!d->r.actions)
		return -ENOMEM;
	rc = find_action_idx(L, "syslog");
	if (rc >= 0)
		d->r.actions[d->r.nactions++] = (size_t)rc;
	return 0;
}

/* The summary and the actions' templates against what the alerts have
 * (only when the when is valid: else its kind is not known). */
static int rule_templates(struct rule_rd *d)
{
	struct tsg_rule *r = &d->r;
	yaml_node_t **kn = d->kn, **vn = d->vn;
	int rc;

	r->fields_avail = tsg_rule_fields_avail(r);
	if (vn[RK_SUMMARY]) {
		rc = ld_template(d->L, d->f, vn[RK_SUMMARY], "summary", &r->summary);
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0)
			d->bad = true;
		else if (d->when_ok)
			check_summary(d->L, d->f, vn[RK_SUMMARY], r);
	} else if (d->when_ok && default_summary(r) < 0) {
		return -ENOMEM;
	}
	if (!d->when_ok)
		return 0;
	for (size_t i = 0; i < r->nactions; i++)
		check_action(d->L, d->f,
			     d->act_nodes     ? d->act_nodes[i]
			     : kn[RK_ACTIONS] ? kn[RK_ACTIONS]
					      : d->rn,
			     r, &d->L->rs->actions[r->actions[i]]);
	return 0;
}

static int rule_append(struct ld *L, struct tsg_rule *r)
{
	struct tsg_rule *nr = realloc(L->rs->rules, (L->rs->nrules + 1) * sizeof(*nr));

	if (!nr)
		return -ENOMEM;
	L->rs->rules = nr;
	r->index = (uint32_t)L->rs->nrules;
	nr[L->rs->nrules++] = *r;
	return 0;
}

/* One rule: read, checked, appended (also when invalid: the set is then
 * rejected, and rules are not reported again for what one already was). */
static int ld_rule(struct ld *L, struct ld_file *f, yaml_node_t *rn)
{
	struct rule_rd d = {.L = L, .f = f, .rn = rn, .when_ok = true};
	const char *name;

	if (!rn || rn->type != YAML_MAPPING_NODE) {
		ld_err(L, f, rn, "expected a rule (a mapping with name, when, ...)");
		return -EINVAL;
	}
	if (rule_name(&d, &name) < 0)
		return -EINVAL;
	d.r.name = strdup(name);
	if (!d.r.name)
		return -ENOMEM;
	d.r.file = f->ipath;
	ld_pos(rn, &d.r.line, &d.r.col);
	d.r.severity = LOG_WARNING;
	d.r.enabled = true;
	if (rule_fields(&d) < 0 || rule_when_actions(&d) < 0 || rule_templates(&d) < 0)
		goto nomem;
	free(d.act_nodes);
	d.act_nodes = NULL;
	d.r.digest = ld_rule_digest(&d.r, L->rs);
	if (rule_append(L, &d.r) < 0)
		goto nomem;
	return d.bad || !d.when_ok ? -EINVAL : 0;
nomem:
	free(d.act_nodes);
	tsg_rule_fini(&d.r);
	L->oom = true;
	return -ENOMEM;
}

int ld_rules(struct ld *L)
{
	for (size_t fi = 0; fi < L->nfiles; fi++) {
		struct ld_file *f = &L->files[fi];
		yaml_node_t *n = f->rules;

		if (!n || ld_is_null(n))
			continue;
		if (n->type != YAML_SEQUENCE_NODE) {
			ld_err(L, f, n, "expected a list of rules (- name: ...) for rules");
			continue;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++)
			if (ld_rule(L, f, ld_node(f, *i)) == -ENOMEM)
				return -ENOMEM;
	}
	return 0;
}
