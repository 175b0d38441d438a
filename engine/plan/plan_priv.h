/* SPDX-License-Identifier: MIT */
/*
 * tsguard: internals of the plan compiler shared by the files of engine/plan/.
 */
#ifndef TSG_PLAN_PRIV_H
#define TSG_PLAN_PRIV_H

#include "plan.h"

#include <stdio.h>

/* netns set of a rule set (plan_ident.c); 0 or -ENOMEM */
int tsg_plan_netns_build(const struct tsg_ruleset *rs, bool record_all, struct tsg_plan_netns *ns);
int tsg_plan_netns_dup(const struct tsg_plan_netns *src, struct tsg_plan_netns *dst);
void tsg_plan_netns_fini(struct tsg_plan_netns *ns);
/* The netns, container and pod fields a match block constrains (TSG_HAVE bits). */
uint32_t tsg_plan_ident_fields(const struct tsg_match *m);
/* Their "user space:" lines of --explain; true when it printed any. */
bool tsg_plan_explain_ident(FILE *out, const struct tsg_match *m);

#endif
