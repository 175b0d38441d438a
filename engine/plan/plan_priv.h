/* SPDX-License-Identifier: MIT */
/*
 * tsguard: internals of the plan compiler shared by the files of engine/plan/.
 */
#ifndef TSG_PLAN_PRIV_H
#define TSG_PLAN_PRIV_H

#include "plan.h"

#include <stdio.h>

#define NPORTS	   65536u
#define ALL_STATES ((uint16_t)((1u << TSG_NSTATES) - 1)) /* NONE included */
#define ALL_BITS   (~(uint64_t)0)

static inline uint64_t slot_bit(unsigned slot)
{
	return (uint64_t)1 << slot;
}

/* netns set of a rule set (plan_ident.c); 0 or -ENOMEM */
int tsg_plan_netns_build(const struct tsg_ruleset *rs, bool record_all, struct tsg_plan_netns *ns);
int tsg_plan_netns_dup(const struct tsg_plan_netns *src, struct tsg_plan_netns *dst);
void tsg_plan_netns_fini(struct tsg_plan_netns *ns);
/* container and pod sets of a rule set (plan_ident.c); 0 or -ENOMEM */
int tsg_plan_cgroups_build(const struct tsg_ruleset *rs, bool record_all,
			   struct tsg_plan_cgroups *cg);
int tsg_plan_cgroups_dup(const struct tsg_plan_cgroups *src, struct tsg_plan_cgroups *dst);
void tsg_plan_cgroups_fini(struct tsg_plan_cgroups *cg);
/* The netns, container and pod fields a match block constrains (TSG_HAVE bits). */
uint32_t tsg_plan_ident_fields(const struct tsg_match *m);
/* Their "user space:" lines of --explain; true when it printed any. */
bool tsg_plan_explain_ident(FILE *out, const struct tsg_match *m);

/* plan.c: rows[f] = the `to` states wanted from f by rule r (transitions). */
void tsg_plan_trans_rows(const struct tsg_rule *r, uint16_t rows[TSG_NSTATES]);
/* plan.c: does the kernel decide the comm set exactly (exact, short names)? */
bool tsg_plan_comm_in_kernel(const struct tsg_strset *s);
/* plan.c: has the set a positive (not negated) item? */
bool tsg_plan_strset_has_pos(const struct tsg_strset *s);
/* plan.c: the fields rule r constrains at all (TSG_HAVE bits). */
uint32_t tsg_plan_rule_fields(const struct tsg_rule *r);
/* plan_lookup.c: does the set match an address whose longest match is prefix pa/pl? */
bool tsg_plan_cidrset_match_prefix(const struct tsg_cidrset *s, const uint8_t pa[16], unsigned pl);

#endif
