// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard kernel side, included by tsguard.bpf.c: the gates at the top of
 * the transition programs (docs/kernel.md, "Scope: every network
 * namespace"): the namespace gate (--netns host, netns_allow) and the
 * cgroup gate (cg_verdict, decided in user space: bpf/capture_cgate.c).
 */

/* Namespaces some rule names (inode -> 1), while netns_filter is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TSG_BPF_NETNS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u64);
} netns_allow SEC(".maps");

/* The cgroup gate's verdicts (socket cgroup id -> tsg_bpf_cg_verdict),
 * while cg_filter is set; LRU: an evicted verdict is asked for again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TSG_BPF_CG_MAX);
	__type(key, __u64);
	__type(value, struct tsg_bpf_cg_verdict);
} cg_verdict SEC(".maps");

/*
 * Is a namespace watched? --netns host: only ours (netns_ino); rules that
 * name namespaces: only those (netns_allow). Namespaces never change, so a
 * socket is either watched for its whole life or not; only a reload can
 * change it, and a socket that already crossed keeps crossing (callers).
 */
static __always_inline bool netns_watched(__u32 ino)
{
	if (netns_ino && ino != netns_ino)
		return false;
	if (netns_filter && !bpf_map_lookup_elem(&netns_allow, &ino))
		return false;
	return true;
}

/* Asks user space for the verdict on a cgroup (TSG_BPF_F_CGROUP). */
static __always_inline void cgroup_ask(__u64 id, __u32 gen, __u32 netns, struct pcpu *pc)
{
	struct tsg_bpf_event *e = event_new(pc);

	if (!e)
		return;
	e->sk_cgroup = id;
	e->netns = netns;
	e->pid = gen;
	e->flags = TSG_BPF_F_CGROUP;
	bpf_ringbuf_submit(e, 0);
	count_in(pc, TSG_BPF_C_CG_ASKED);
}

/*
 * The cgroup gate: while every rule names containers or pods (cg_filter),
 * a socket whose cgroup user space denied in this generation is not
 * watched. A cgroup without a verdict of this generation passes, is marked
 * pending and asked about once; so a new container's first transitions are
 * never lost, and the answer is written by user space (capture_cgate.c).
 * A cgroup never changes for a socket, so the verdict holds for its life.
 */
static __always_inline bool cgroup_watched(const struct sock *sk, __u32 netns, struct pcpu *pc,
					   bool direct)
{
	struct tsg_bpf_cg_verdict *v, nv = {};
	__u32 gen;
	__u64 id;

	if (!cg_filter)
		return true;
	id = sk_cgroup_id_x(sk, direct);
	if (!id)
		return true;
	gen = cg_gen;
	v = bpf_map_lookup_elem(&cg_verdict, &id);
	if (v && v->gen == gen)
		return v->verdict != TSG_BPF_CG_DENY;
	nv.gen = gen;
	nv.verdict = TSG_BPF_CG_PENDING;
	if (bpf_map_update_elem(&cg_verdict, &id, &nv, BPF_ANY) == 0)
		cgroup_ask(id, gen, netns, pc);
	return true;
}

/* Which gate drops a transition of sk: TSG_BPF_C_OTHER_NS, TSG_BPF_C_OTHER_CG
 * (the counter it is counted in), or TSG_BPF_C_N when it passes both. */
static __always_inline __u32 gate_of(const struct sock *sk, __u32 netns, struct pcpu *pc,
				     bool direct)
{
	if (!netns_watched(netns))
		return TSG_BPF_C_OTHER_NS;
	if (!cgroup_watched(sk, netns, pc, direct))
		return TSG_BPF_C_OTHER_CG;
	return TSG_BPF_C_N;
}
