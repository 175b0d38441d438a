// SPDX-License-Identifier: MIT
/*
 * tsguard: `--explain`, the plan in words (engine/plan/plan.h): for each rule
 * its slot, what the kernel maps decide and what user space re-checks, then
 * a summary of the maps.
 */
#include "plan_priv.h"
#include "match.h"

#include <inttypes.h>
#include <string.h>

#define EXPLAIN_MAX_LIST 16 /* entries listed per field before "... N more" */

static const char *state_name(int s)
{
	const char *n = tsg_state_name(s);
	return n ? n : "?";
}

static void print_statemask(FILE *out, tsg_statemask m)
{
	bool first = true;

	if (!m) {
		fputs("ANY", out);
		return;
	}
	for (int s = 0; s < TSG_NSTATES; s++)
		if (m & (1u << s)) {
			fprintf(out, "%s%s", first ? "" : "|", state_name(s));
			first = false;
		}
}

static void print_fields(FILE *out, uint32_t f)
{
	bool first = true;

	for (int i = 0; i < TSG_SF_N; i++)
		if (f & TSG_HAVE(i)) {
			const char *n = tsg_sfield_name(i);
			fprintf(out, "%s%s", first ? "" : ",", n ? n : "?");
			first = false;
		}
	if (first)
		fputs("-", out);
}

static void print_cidr(FILE *out, const uint8_t a[16], unsigned plen, bool neg)
{
	char buf[64];
	bool v4 = tsg_addr_is_v4mapped(a) && plen >= 96;

	tsg_addr_format(a, buf, sizeof(buf));
	fprintf(out, "%s%s/%u", neg ? "!" : "", buf, v4 ? plen - 96 : plen);
}

static void explain_trans(FILE *out, const struct tsg_rule *r)
{
	uint16_t rows[TSG_NSTATES];
	unsigned npairs = 0;
	bool first = true, tw = false;

	tsg_plan_trans_rows(r, rows);
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			if (rows[f] & (1u << t)) {
				npairs++;
				tw |= f == TSG_TIME_WAIT || t == TSG_TIME_WAIT;
			}
	fputs("    trans     ", out);
	if (r->kind == TSG_KIND_QUEUE) {
		fputs("LISTEN->ANY (the listener's close); its queue is sampled, not traced", out);
	} else if (r->kind == TSG_KIND_TIME || r->kind == TSG_KIND_COUNT) {
		fprintf(out, "ANY->%s, %s->ANY", state_name(r->state), state_name(r->state));
		tw = r->state == TSG_TIME_WAIT;
	} else if (!r->from || !r->to) {
		/* one side is "any": FROM->ANY or ANY->TO per named state */
		tsg_statemask named = r->from ? r->from : r->to;
		if (!named)
			fputs("ANY->ANY", out);
		for (int s = 0; named && s < TSG_NSTATES; s++) {
			if (!(named & (1u << s)))
				continue;
			if (r->from)
				fprintf(out, "%s%s->ANY", first ? "" : ", ", state_name(s));
			else
				fprintf(out, "%sANY->%s", first ? "" : ", ", state_name(s));
			first = false;
		}
		tw = (r->from & (1u << TSG_TIME_WAIT)) || (r->to & (1u << TSG_TIME_WAIT));
	} else {
		for (int f = 0; f < TSG_NSTATES; f++)
			for (int t = 0; t < TSG_NSTATES; t++)
				if (rows[f] & (1u << t)) {
					fprintf(out, "%s%s->%s", first ? "" : ", ", state_name(f),
						state_name(t));
					first = false;
				}
	}
	fprintf(out, "  (%u pair%s of trans[from][to]; ANY includes NONE = snapshot)\n", npairs,
		npairs == 1 ? "" : "s");
	if (tw)
		fputs("              TIME_WAIT pairs are derived by the capture: FIN_WAIT2->TIME_WAIT,"
		      " CLOSING->TIME_WAIT, TIME_WAIT->CLOSE\n",
		      out);
}

static void explain_ports(FILE *out, const char *name, const struct tsg_portset *s, bool lport)
{
	unsigned npass = 0;

	fprintf(out, "    %-9s ", name);
	if (!s->n) {
		fprintf(out, "any (slot bit in all 65536 %s[] entries)\n", name);
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct tsg_portrange *pr = &s->v[i];
		fprintf(out, "%s%s%u", i ? ", " : "", pr->neg ? "!" : "", pr->lo);
		if (pr->hi != pr->lo)
			fprintf(out, "-%u", pr->hi);
	}
	for (uint32_t p = 0; p < NPORTS; p++)
		npass += tsg_portset_match(s, (uint16_t)p);
	fprintf(out, "  (slot bit in %u of 65536 %s[] entries", npass, name);
	if (lport && !tsg_portset_match(s, 0))
		fputs(", plus lport[0]: connects report lport 0", out);
	fputs(")\n", out);
}

static void explain_lpm(FILE *out, const char *name, const struct tsg_cidrset *s,
			const struct tsg_plan_lpm *e, size_t n)
{
	size_t shown = 0, total = 0;

	fprintf(out, "    %-9s ", name);
	if (!s->n) {
		fprintf(out, "any (slot bit in all %zu %s LPM entries)\n", n, name);
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		fputs(i ? ", " : "", out);
		print_cidr(out, s->v[i].addr, s->v[i].plen, s->v[i].neg);
	}
	fprintf(out, "\n              LPM entries with the slot bit: ");
	for (size_t i = 0; i < n; i++) {
		if (!tsg_plan_cidrset_match_prefix(s, e[i].addr, e[i].plen))
			continue;
		if (total++ < EXPLAIN_MAX_LIST) {
			fputs(shown++ ? ", " : "", out);
			print_cidr(out, e[i].addr, e[i].plen, false);
		}
	}
	if (!total)
		fputs("none", out);
	if (total > shown)
		fprintf(out, " ... and %zu more", total - shown);
	fprintf(out, " (of %zu)\n", n);
}

static void explain_comm(FILE *out, const struct tsg_strset *s, const struct tsg_plan *p)
{
	fputs("    comm      ", out);
	if (!s->n) {
		fputs("any (comm_default and every comm entry)\n", out);
		return;
	}
	if (!tsg_plan_comm_in_kernel(s)) {
		fputs("user space (regex or over-long name): slot bit in comm_default and every"
		      " comm entry\n",
		      out);
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		fprintf(out, "%s%s\"%s\"", i ? ", " : "", s->v[i].neg ? "!" : "", s->v[i].s);
	fputs("\n              entries:", out);
	for (size_t i = 0; i < p->ncomm; i++) {
		bool used = false;
		for (size_t j = 0; j < s->n; j++)
			used |= strncmp(s->v[j].s, p->comm[i].comm, TSG_COMM_LEN) == 0;
		if (used)
			fprintf(out, " \"%s\"=%s", p->comm[i].comm,
				tsg_commset_match(s, p->comm[i].comm) ? "pass" : "drop");
	}
	fprintf(out, "; other comms (comm_default): %s\n",
		tsg_plan_strset_has_pos(s) ? "drop" : "pass");
}

static void explain_uid(FILE *out, const struct tsg_uidset *s)
{
	bool has_pos = false;

	fputs("    uid       ", out);
	if (!s->n) {
		fputs("any (uid_default and every uid entry)\n", out);
		return;
	}
	fputs("entries:", out);
	for (size_t i = 0; i < s->n; i++) {
		fprintf(out, " %" PRIu32 "=%s", s->v[i].uid,
			tsg_uidset_match(s, s->v[i].uid) ? "pass" : "drop");
		has_pos |= !s->v[i].neg;
	}
	fprintf(out, "; other uids (uid_default): %s\n", has_pos ? "drop" : "pass");
}

static void explain_condition(FILE *out, const struct tsg_rule *r)
{
	char b1[32], b2[32];

	fputs("    condition ", out);
	switch (r->kind) {
	case TSG_KIND_TRANSITION:
		fputs("fires on each matching transition (from ", out);
		print_statemask(out, r->from);
		fputs(" to ", out);
		print_statemask(out, r->to);
		fputs(")", out);
		break;
	case TSG_KIND_TIME:
		fprintf(out, "timer at longer_than %s after entering %s, per socket;"
			     " resolves when it leaves",
			tsg_duration_format(r->longer_than_ns, b1, sizeof(b1)),
			state_name(r->state));
		break;
	case TSG_KIND_COUNT:
		fprintf(out, "count per key by ");
		print_fields(out, r->by);
		fprintf(out, " of sockets in %s; fires above %" PRIu64 ", resolves at <= %" PRIu64,
			state_name(r->state), r->threshold, r->resolve_below);
		break;
	case TSG_KIND_RATE:
		fprintf(out, "window %s per key by ",
			tsg_duration_format(r->per_ns, b1, sizeof(b1)));
		print_fields(out, r->by);
		fputs(" of transitions ", out);
		print_statemask(out, r->from);
		fputs("->", out);
		print_statemask(out, r->to);
		fprintf(out, "; fires above %" PRIu64, r->threshold);
		break;
	case TSG_KIND_QUEUE:
		if (r->queue_pct_x100)
			fprintf(out, "accept queue per listening socket, sampled; fires above "
				     "%u.%02u%% of its backlog",
				r->queue_pct_x100 / 100, r->queue_pct_x100 % 100);
		else
			fprintf(out, "accept queue per listening socket, sampled; fires above %" PRIu64,
				r->threshold);
		fputs(", resolves at or below", out);
		break;
	}
	if ((r->kind == TSG_KIND_COUNT || r->kind == TSG_KIND_RATE || r->kind == TSG_KIND_QUEUE) &&
	    r->for_ns)
		fprintf(out, "; for %s", tsg_duration_format(r->for_ns, b2, sizeof(b2)));
	if (r->cooldown_ns) {
		fprintf(out, "; cooldown %s", tsg_duration_format(r->cooldown_ns, b2, sizeof(b2)));
		if (r->kind == TSG_KIND_TRANSITION && r->by) {
			fputs(" by ", out);
			print_fields(out, r->by);
		}
	}
	fputc('\n', out);
}

static void explain_rule(FILE *out, const struct tsg_plan *p, const struct tsg_ruleset *rs,
			 size_t i)
{
	const struct tsg_rule *r = &rs->rules[i];
	const struct tsg_match *m = &r->match;
	unsigned slot = p->slot_of_rule[i];
	uint32_t uf = p->user_fields_of_rule[i];
	bool any_user = false;

	fprintf(out, "rule %zu \"%s\"", i, r->name ? r->name : "?");
	if (r->file)
		fprintf(out, " (%s:%d)", r->file, r->line);
	fputc('\n', out);
	if (!r->enabled) {
		fputs("  disabled: no slot bits, never evaluated\n\n", out);
		return;
	}
	fprintf(out, "  slot %u (bit 0x%016" PRIx64 "), %s rule\n", slot, slot_bit(slot),
		tsg_kind_title(r->kind));
	fputs("  kernel:\n", out);
	explain_trans(out, r);
	fputs("    family    ", out);
	if (!m->family_mask)
		fputs("any (family[0] and family[1])\n", out);
	else
		fprintf(out, "%s%s%s\n", (m->family_mask & 1) ? "ipv4 (family[0])" : "",
			(m->family_mask & 3) == 3 ? ", " : "",
			(m->family_mask & 2) ? "ipv6 (family[1])" : "");
	explain_ports(out, "lport", &m->lport, true);
	explain_ports(out, "rport", &m->rport, false);
	explain_lpm(out, "laddr", &m->laddr, p->laddr, p->nladdr);
	explain_lpm(out, "raddr", &m->raddr, p->raddr, p->nraddr);
	explain_comm(out, &m->comm, p);
	explain_uid(out, &m->uid);
	fputs("    cgroup    not in the kernel (all slots pass)\n", out);

	fputs("  user space:\n", out);
	if (m->comm.n && !tsg_plan_comm_in_kernel(&m->comm)) {
		fputs("    comm      ", out);
		for (size_t j = 0; j < m->comm.n; j++) {
			const struct tsg_stritem *it = &m->comm.v[j];
			fprintf(out, "%s%s%s\"%s\"", j ? ", " : "", it->neg ? "!" : "",
				it->re ? "regex " : "", it->s ? it->s : "");
		}
		fputc('\n', out);
		any_user = true;
	}
	if (m->cgroup.n) {
		fputs("    cgroup    prefix ", out);
		for (size_t j = 0; j < m->cgroup.n; j++)
			fprintf(out, "%s%s%s", j ? ", " : "", m->cgroup.v[j].neg ? "!" : "",
				m->cgroup.v[j].s ? m->cgroup.v[j].s : "");
		fputc('\n', out);
		any_user = true;
	}
	any_user |= tsg_plan_explain_ident(out, m);
	if (m->lport.n && !tsg_portset_match(&m->lport, 0)) {
		fputs("    lport     re-checked (lport[0] passes every slot)\n", out);
		any_user = true;
	}
	{
		size_t nshare = 0;
		for (size_t j = 0; j < rs->nrules; j++)
			if (j != i && rs->rules[j].enabled && p->slot_of_rule[j] == slot)
				nshare++;
		if (nshare) {
			fprintf(out, "    shared    slot %u shared with %zu other rule%s:", slot,
				nshare, nshare > 1 ? "s" : "");
			size_t shown = 0;
			for (size_t j = 0; j < rs->nrules; j++)
				if (j != i && rs->rules[j].enabled && p->slot_of_rule[j] == slot &&
				    shown++ < EXPLAIN_MAX_LIST)
					fprintf(out, " %zu", j);
			if (shown > EXPLAIN_MAX_LIST)
				fputs(" ...", out);
			fputs("; transition and fields re-checked: ", out);
			print_fields(out, tsg_plan_rule_fields(r));
			fputc('\n', out);
			any_user = true;
		}
	}
	if (!any_user)
		fputs("    match     decided in the kernel\n", out);
	fputs("    re-check  fields ", out);
	print_fields(out, uf);
	fputc('\n', out);
	explain_condition(out, r);
	fputc('\n', out);
}

void tsg_plan_explain(const struct tsg_plan *p, const struct tsg_ruleset *rs, FILE *out)
{
	size_t nen = 0, ntrans = 0, nlport = 0, nrport = 0;
	unsigned nslots = 0;

	fputs("# tsguard plan: kernel filter maps and user-space matching\n", out);
	fputs("# kernel bits = trans[from][to] & family & lport & rport & laddr(LPM) &"
	      " raddr(LPM) & comm & uid; an event crosses when bits != 0\n",
	      out);
	if (p->record_all)
		fputs("# --record: every bit is set in every map, every transition crosses\n", out);
	fputc('\n', out);
	for (size_t i = 0; rs && i < rs->nrules && i < p->nrules; i++) {
		explain_rule(out, p, rs, i);
		nen += rs->rules[i].enabled;
	}
	for (int s = 0; s < TSG_PLAN_SLOTS; s++)
		nslots += (p->all_slots >> s) & 1;
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			ntrans += p->trans[f][t] != 0;
	for (uint32_t i = 0; i < NPORTS; i++) {
		nlport += p->lport[i] != 0;
		nrport += p->rport[i] != 0;
	}
	fputs("summary:\n", out);
	fprintf(out, "  rules     %zu (%zu enabled) in %u slot%s, slots 0x%016" PRIx64 "\n",
		p->nrules, nen, nslots, nslots == 1 ? "" : "s", p->all_slots);
	fprintf(out, "  trans     array %dx%d, %zu non-zero pairs\n", TSG_NSTATES, TSG_NSTATES,
		ntrans);
	fprintf(out, "  family    array 2: ipv4 0x%016" PRIx64 ", ipv6 0x%016" PRIx64 "\n",
		p->family[0], p->family[1]);
	fprintf(out, "  lport     array 65536, %zu non-zero; lport[0] = 0x%016" PRIx64
		     " (connects report lport 0 at CLOSE->SYN_SENT: every slot)\n",
		nlport, p->lport[0]);
	fprintf(out, "  rport     array 65536, %zu non-zero\n", nrport);
	fprintf(out, "  laddr     LPM trie, %zu entries (incl. ::/0)\n", p->nladdr);
	fprintf(out, "  raddr     LPM trie, %zu entries (incl. ::/0)\n", p->nraddr);
	fprintf(out, "  comm      hash, %zu entries, default 0x%016" PRIx64 "\n", p->ncomm,
		p->comm_default);
	fprintf(out, "  uid       hash, %zu entries, default 0x%016" PRIx64 "\n", p->nuid,
		p->uid_default);
	fputs("  cgroup    user space only\n", out);
	fprintf(out, "  netns     user space; the rules name %zu inode%s and %zu name%s%s\n",
		p->netns.ninodes, p->netns.ninodes == 1 ? "" : "s", p->netns.nnames,
		p->netns.nnames == 1 ? "" : "s",
		p->netns.any ? ", and some rule matches any namespace" : "");
	if (tsg_plan_cgroup_gate(p))
		fprintf(out, "  container, pod  kernel gate on the socket's cgroup: %zu rule%s"
			     " containers or pods (a cgroup's verdict is decided once, in user space)\n",
			p->cgroups.n, p->cgroups.n == 1 ? " names" : "s name");
	else
		fputs("  container, pod  user space; some rule matches any container\n", out);
}
