/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the compiled plan: the part of a rule set that the kernel can
 * decide, shaped as BPF map contents.
 *
 * Rules are assigned to 64 slots (rule index % 64; with more than 64 rules a
 * slot is the union of its rules, so the kernel filter stays a superset of
 * what user space matches). The kernel computes, per transition,
 *
 *   bits = trans[from][to] & family[f] & lport[lp] & rport[rp]
 *          & lpm(laddr) & lpm(raddr) & comm(c) & uid(u)
 *
 * and sends the event to user space only when bits != 0 (or when the socket
 * already sent an event and now ends: ->CLOSE, ->TIME_WAIT). Fields the
 * kernel cannot decide (regex comm, cgroup prefixes, netns, container and
 * pod) are all-ones here and matched in user space; the set of namespaces
 * the rules name is there for a netns gate (tsg_plan_netns), their
 * containers and pods for a cgroup gate (tsg_plan_cgroup_gate).
 */
#ifndef TSG_PLAN_H
#define TSG_PLAN_H

#include "ruleset.h"

#define TSG_PLAN_SLOTS 64

struct tsg_plan_lpm {
	uint8_t addr[16]; /* IPv6 / IPv4-mapped */
	uint8_t plen;     /* 0..128 */
	uint64_t bits;
};

struct tsg_plan_comm {
	char comm[TSG_COMM_LEN];
	uint64_t bits;
};

struct tsg_plan_uid {
	uint32_t uid;
	uint64_t bits;
};

/*
 * The network namespaces the enabled rules name (`netns:`), for a kernel
 * filter on the socket's namespace. `any`: some rule can match a namespace
 * outside this set (it has no netns item, or only exclusions, or --record),
 * so every namespace must cross. Otherwise a socket crosses when its
 * namespace's inode is in inodes[] (sorted, distinct), or when its namespace
 * has one of names[] under /run/netns (a name that denoted no namespace at
 * load, or that came to denote another one since: the capture resolves the
 * names again when it meets a new namespace).
 */
struct tsg_plan_netns {
	uint32_t *inodes;
	size_t ninodes;
	char **names;
	size_t nnames;
	bool any;
};

/*
 * The containers and pods the enabled rules name, for a kernel gate on the
 * socket's own cgroup. `any`: some rule can match a socket outside every
 * container and pod the rules name (it names neither, or only exclusions,
 * or `none`; or --record): every cgroup crosses. Otherwise v[] holds the
 * container and pod sets of each enabled rule, and a cgroup crosses when
 * tsg_plan_cgroup_allows() says so for the container and pod its path names.
 */
struct tsg_plan_cgroups {
	struct tsg_plan_cgrule {
		struct tsg_idset container, pod;
	} *v;
	size_t n;
	bool any;
};

struct tsg_plan {
	uint64_t all_slots;                       /* bits of slots in use */
	uint64_t trans[TSG_NSTATES][TSG_NSTATES]; /* [from][to] */
	uint64_t family[2];                       /* [0] ipv4, [1] ipv6 */
	uint64_t *lport;                          /* [65536] */
	uint64_t *rport;                          /* [65536] */
	struct tsg_plan_lpm *laddr, *raddr;       /* always hold ::/0 */
	size_t nladdr, nraddr;
	struct tsg_plan_comm *comm;
	size_t ncomm;
	uint64_t comm_default; /* for a comm not in comm[] */
	struct tsg_plan_uid *uid;
	size_t nuid;
	uint64_t uid_default;
	bool record_all; /* --record: every transition crosses */
	/* per rule: its slot, and which of its fields are left to user space */
	uint8_t *slot_of_rule;
	uint32_t *user_fields_of_rule; /* TSG_HAVE(TSG_SF_*) bits */
	size_t nrules;
	struct tsg_plan_netns netns; /* read it with tsg_plan_netns() */
	struct tsg_plan_cgroups cgroups; /* tsg_plan_cgroup_gate(), tsg_plan_cgroup_allows() */
	bool wants_queue; /* an enabled queue rule exists: sample listeners */
};

/* The namespaces the plan's rules name (struct tsg_plan_netns); never NULL. */
const struct tsg_plan_netns *tsg_plan_netns(const struct tsg_plan *p);

/*
 * The cgroup gate: true when every socket the plan can match is in a
 * container or pod some rule names, so that the kernel may drop the
 * transitions of other cgroups. tsg_plan_cgroup_allows: can a socket whose
 * cgroup names this container and pod (NULL: none) match some rule? Exact
 * for those two fields, so a superset of the whole match.
 */
bool tsg_plan_cgroup_gate(const struct tsg_plan *p);
bool tsg_plan_cgroup_allows(const struct tsg_plan *p, const char *container, const char *pod);

/* 0 or -ENOMEM. `record_all` makes every transition cross. */
int tsg_plan_build(const struct tsg_ruleset *rs, bool record_all, struct tsg_plan **out);
void tsg_plan_free(struct tsg_plan *p);
/* True when an enabled queue rule exists: the capture samples listening
 * sockets' accept queues (at least every second) only then. */
bool tsg_plan_wants_queue(const struct tsg_plan *p);
/* A deep copy (the capture keeps what its maps hold); 0 or -ENOMEM. */
int tsg_plan_dup(const struct tsg_plan *p, struct tsg_plan **out);
/*
 * The lookups the kernel does in the plan's maps: the bits of the longest
 * prefix in e[n] containing (a, plen) (an address is a /128; 0 if none);
 * of a comm (truncated as a kernel comm) or uid, or the default when absent.
 */
uint64_t tsg_plan_lpm_bits(const struct tsg_plan_lpm *e, size_t n, const uint8_t a[16],
			   unsigned plen);
uint64_t tsg_plan_comm_bits(const struct tsg_plan *p, const char *comm);
uint64_t tsg_plan_uid_bits(const struct tsg_plan *p, uint32_t uid);
/*
 * Whether some rule wants sockets in `state`: a transition into or out of
 * it, a time or count rule on it (or record_all). The capture's scans ask
 * it before they look for what no tracepoint reports (NEW_SYN_RECV, ...).
 */
bool tsg_plan_wants_state(const struct tsg_plan *p, uint8_t state);
/* The user-space reference of the kernel decision (tests, replay stats). */
uint64_t tsg_plan_eval(const struct tsg_plan *p, uint8_t from, uint8_t to,
		       const struct tsg_sockinfo *info);
/* `--check --explain`: rule by rule, kernel maps/entries and user-space part. */
void tsg_plan_explain(const struct tsg_plan *p, const struct tsg_ruleset *rs, FILE *out);

#endif
