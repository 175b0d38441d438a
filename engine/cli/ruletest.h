/* SPDX-License-Identifier: MIT */
/* tsguard: rule tests (`tsguard test FILE...`). */
#ifndef TSG_RULETEST_H
#define TSG_RULETEST_H

#include <stddef.h>
#include <stdio.h>

/* Runs every test of every file, printing "ok - NAME" / "FAIL - NAME" with
 * details, then "N passed, N failed". Returns 0 when none failed, else 1. */
int tsg_ruletest_run(const char *const *files, size_t nfiles, FILE *out);

#endif
