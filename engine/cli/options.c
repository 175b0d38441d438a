/* SPDX-License-Identifier: MIT */
/* tsguard: the command line's options (options.h). */
#include "options.h"

#include "control.h"
#include "engine.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tsg_cli_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: tsguard -r PATH [-r PATH ...] [options]\n"
	    "       tsguard test FILE...\n"
	    "       tsguard ctl [--control PATH] [-o text|json] status|alerts|reload\n"
	    "\n"
	    "  -r, --rules PATH       rule file or directory (repeatable; default "
	    "/etc/tsguard/rules.d)\n"
	    "  -n, --dry-run          evaluate and print what each action would run; run nothing\n"
	    "      --check            validate the rules and exit (0 valid, 2 invalid)\n"
	    "      --explain          with --check: print the compiled plan rule by rule\n"
	    "      --replay FILE      read events from FILE ('-': standard input) on a virtual "
	    "clock\n"
	    "      --until SECONDS    with --replay: run the clock on to this time at the end\n"
	    "      --record FILE      also write every TCP state transition to FILE\n"
	    "      --netns all|host   watch every network namespace (default) or only\n"
	    "                         tsguard's own\n"
	    "  -o, --output FORMAT    alerts on standard output as text (default) or json\n"
	    "      --metrics ADDR:PORT  serve /metrics and /healthz\n"
	    "      --control PATH     control socket for `tsguard ctl` (default\n"
	    "                         " TSG_CONTROL_DEFAULT "; 'none': no socket)\n"
	    "      --max-sockets N    track at most N sockets (default 4194304)\n"
	    "  -v, --verbose          more log output\n"
	    "  -q, --quiet            only warnings and errors\n"
	    "      --version          print the version\n"
	    "  -h, --help             this help\n"
	    "\n"
	    "Signals: SIGHUP reloads the rules; SIGTERM and SIGINT stop.\n"
	    "Exit status: 0 success, 1 runtime failure, 2 usage error or invalid rules.\n");
}

/* --until SECONDS: 0 or -EINVAL (printed). */
static int parse_until(const char *arg, struct opts *o)
{
	char *end;

	o->until = strtod(arg, &end);
	if (!*arg || isspace((unsigned char)*arg) || *end || !isfinite(o->until) || o->until < 0 ||
	    o->until > 1e9) {
		fprintf(stderr, "tsguard: --until wants seconds, not \"%s\"\n", arg);
		return -EINVAL;
	}
	o->has_until = true;
	return 0;
}

/* --max-sockets N: 0 or -EINVAL (printed). */
static int parse_max_sockets(const char *arg, struct opts *o)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (!isdigit((unsigned char)*arg) || *end || errno || !v || v > TSG_ENGINE_SOCKETS_LIMIT) {
		fprintf(stderr, "tsguard: --max-sockets wants a number from 1 to %u, not \"%s\"\n",
			TSG_ENGINE_SOCKETS_LIMIT, arg);
		return -EINVAL;
	}
	o->max_sockets = (size_t)v;
	return 0;
}

/* Options that do not go together (printed). */
static bool args_conflict(const struct opts *o)
{
	if (o->explain && !o->check) {
		fprintf(stderr, "tsguard: --explain goes with --check\n");
		return true;
	}
	if (o->has_until && !o->replay) {
		fprintf(stderr, "tsguard: --until goes with --replay\n");
		return true;
	}
	if (o->record && o->replay) {
		fprintf(stderr, "tsguard: --record records live transitions; it does not combine "
				"with --replay\n");
		return true;
	}
	return false;
}

/* --netns all|host: 0 or -EINVAL (printed). */
static int parse_netns(const char *arg, struct opts *o)
{
	if (!strcmp(arg, "host") || !strcmp(arg, "all")) {
		o->netns_host = !strcmp(arg, "host");
		return 0;
	}
	fprintf(stderr, "tsguard: --netns is all or host, not \"%s\"\n", arg);
	return -EINVAL;
}

/* The long options (parse_args). */
enum {
	OPT_CHECK = 256,
	OPT_EXPLAIN,
	OPT_REPLAY,
	OPT_UNTIL,
	OPT_RECORD,
	OPT_METRICS,
	OPT_VERSION,
	OPT_CONTROL,
	OPT_NETNS,
	OPT_MAX_SOCKETS
};

static const struct option longopts[] = {
    {"rules", required_argument, NULL, 'r'},
    {"dry-run", no_argument, NULL, 'n'},
    {"check", no_argument, NULL, OPT_CHECK},
    {"explain", no_argument, NULL, OPT_EXPLAIN},
    {"replay", required_argument, NULL, OPT_REPLAY},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"record", required_argument, NULL, OPT_RECORD},
    {"output", required_argument, NULL, 'o'},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"netns", required_argument, NULL, OPT_NETNS},
    {"max-sockets", required_argument, NULL, OPT_MAX_SOCKETS},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* -r PATH: 0 or -EINVAL (printed). */
static int parse_rules_path(const char *arg, struct opts *o)
{
	if (o->nrules == MAX_RULE_PATHS) {
		fprintf(stderr, "tsguard: at most %d -r paths\n", MAX_RULE_PATHS);
		return -EINVAL;
	}
	o->rules[o->nrules++] = arg;
	return 0;
}

/* -o text|json: 0 or -EINVAL (printed). */
static int parse_output(const char *arg, struct opts *o)
{
	if (!strcmp(arg, "json"))
		o->json = true;
	else if (strcmp(arg, "text")) {
		fprintf(stderr, "tsguard: --output is text or json, not \"%s\"\n", arg);
		return -EINVAL;
	}
	return 0;
}

/* What an option does: set a flag, keep its argument, or parse it. */
struct opt_do {
	int c;
	bool *flag;
	const char **arg;
	int (*parse)(const char *arg, struct opts *o);
};

/* The option c (of the table) done: 0, 1 (not in the table) or -EINVAL. */
static int do_option(int c, struct opts *o)
{
	const struct opt_do table[] = {
	    {'n', &o->dry_run, NULL, NULL},
	    {OPT_CHECK, &o->check, NULL, NULL},
	    {OPT_EXPLAIN, &o->explain, NULL, NULL},
	    {'q', &o->quiet, NULL, NULL},
	    {OPT_REPLAY, NULL, &o->replay, NULL},
	    {OPT_RECORD, NULL, &o->record, NULL},
	    {OPT_METRICS, NULL, &o->metrics, NULL},
	    {OPT_CONTROL, NULL, &o->control, NULL},
	    {'r', NULL, NULL, parse_rules_path},
	    {'o', NULL, NULL, parse_output},
	    {OPT_UNTIL, NULL, NULL, parse_until},
	    {OPT_MAX_SOCKETS, NULL, NULL, parse_max_sockets},
	    {OPT_NETNS, NULL, NULL, parse_netns},
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct opt_do *t = &table[i];

		if (t->c != c)
			continue;
		if (t->flag)
			*t->flag = true;
		else if (t->arg)
			*t->arg = optarg;
		else if (t->parse(optarg, o) < 0)
			return -EINVAL;
		return 0;
	}
	return 1;
}

int tsg_cli_parse_args(int argc, char **argv, struct opts *o)
{
	int c, rc;

	while ((c = getopt_long(argc, argv, "r:no:vqh", longopts, NULL)) != -1) {
		rc = do_option(c, o);
		if (rc < 0)
			return rc;
		if (rc == 0)
			continue;
		switch (c) {
		case 'v':
			o->verbose++;
			break;
		case OPT_VERSION:
			printf("tsguard %s\n", TSG_VERSION);
			exit(0);
		case 'h':
			tsg_cli_usage(stdout);
			exit(0);
		default:
			tsg_cli_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tsguard: unexpected argument \"%s\"\n", argv[optind]);
		tsg_cli_usage(stderr);
		return -EINVAL;
	}
	if (args_conflict(o))
		return -EINVAL;
	if (!o->nrules)
		o->rules[o->nrules++] = "/etc/tsguard/rules.d";
	return 0;
}
