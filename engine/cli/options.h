/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the options of `tsguard` itself (docs/cli.md "Running"): what
 * parse_args makes of argv. `tsguard test` and `tsguard ctl` have their own.
 */
#ifndef TSG_CLI_OPTIONS_H
#define TSG_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define EXIT_RUNTIME   1
#define EXIT_USAGE     2
#define MAX_RULE_PATHS 64

struct opts {
	const char *rules[MAX_RULE_PATHS];
	size_t nrules;
	bool dry_run, check, explain, json, quiet;
	const char *replay, *record, *metrics;
	const char *control; /* NULL: the default path */
	double until;
	bool has_until;
	size_t max_sockets; /* 0: the engine's default */
	bool netns_host;    /* --netns host: only tsguard's own network namespace */
	int verbose;
};

/* The usage text. */
void tsg_cli_usage(FILE *f);

/*
 * argv into *o (zeroed by the caller): 0, or -EINVAL after printing why.
 * --help and --version print and exit(0). No -r: the default rule folder.
 */
int tsg_cli_parse_args(int argc, char **argv, struct opts *o);

#endif
