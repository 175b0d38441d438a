// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard kernel side, included by tsguard.bpf.c: how many listeners each
 * network namespace holds, so that the light pass for request sockets
 * (tsguard_iter.bpf.h) can end after a namespace's last listener when none
 * of them has a request socket, instead of walking the host's established
 * hash to its end: iter/tcp finds the next socket of a namespace by going
 * through every bucket and every other namespace's socket before it.
 *
 * The count is learnt by the pass itself: once it reaches the established
 * hash, it has seen all the namespace's listeners. It is trusted only while
 * no listener came or went since: every ->LISTEN and LISTEN->CLOSE adds one
 * to the namespace's gen (inet_csk_listen_start reports LISTEN before it
 * hashes the socket), and a count learnt at gen g says so. User space reads
 * gen before a namespace's walk starts (iter_lis_gen0); a pass learns only
 * when gen did not move during its walk. User space also lets a pass run to
 * the established hash every few seconds (iter_lis_stop = 0), which learns
 * the count again whatever happened.
 */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* an evicted count is learnt again */
	__uint(max_entries, TSG_BPF_NETNS_MAX);
	__type(key, __u32); /* network namespace inode */
	__type(value, struct tsg_bpf_ns_lis);
} ns_lis SEC(".maps");

/* Set by user space before each namespace's walk: its gen then (0 if the map
 * had none), and whether this pass may end after the known listeners. */
__u64 iter_lis_gen0 = 0;
__u32 iter_lis_stop = 0;
/* the walk: listeners of iter_req_ns seen, and whether the established hash
 * was reached (all of them seen) */
__u32 iter_lis_seen = 0;
__u32 iter_lis_done = 0;

/* A transition: a listener of namespace ns comes or goes. */
static __always_inline void listen_change(__u32 ns, int oldstate, int newstate)
{
	struct tsg_bpf_ns_lis *v, z = {};

	if (newstate != TSG_BPF_TCP_LISTEN &&
	    !(oldstate == TSG_BPF_TCP_LISTEN && newstate == TSG_BPF_TCP_CLOSE))
		return;
	v = bpf_map_lookup_elem(&ns_lis, &ns);
	if (!v) {
		/* at gen 0, as a pass that learnt first would have made it: the
		 * add below makes it untrusted either way */
		bpf_map_update_elem(&ns_lis, &ns, &z, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&ns_lis, &ns);
		if (!v)
			return; /* no entry: no count is trusted */
	}
	__sync_fetch_and_add(&v->gen, 1);
}

/* The walk met the namespace's last listener it knows: the pass may end. */
static __always_inline bool iter_lis_last(__u32 ns)
{
	struct tsg_bpf_ns_lis *v;

	if (!iter_lis_stop || iter_lis_done)
		return false;
	v = bpf_map_lookup_elem(&ns_lis, &ns);
	return v && v->known && v->known_gen == v->gen && v->known_gen == iter_lis_gen0 &&
	       iter_lis_seen >= v->count;
}

/* The walk reached the established hash: every listener of ns was seen. */
static __always_inline void iter_lis_learn(__u32 ns)
{
	struct tsg_bpf_ns_lis *v, z = {};

	if (iter_lis_done)
		return;
	iter_lis_done = 1;
	v = bpf_map_lookup_elem(&ns_lis, &ns);
	if (!v) {
		if (iter_lis_gen0)
			return; /* evicted during the walk */
		z.count = iter_lis_seen;
		z.known = 1;
		bpf_map_update_elem(&ns_lis, &ns, &z, BPF_NOEXIST);
		return;
	}
	if (v->gen != iter_lis_gen0)
		return; /* a listener came or went during the walk */
	v->count = iter_lis_seen;
	v->known_gen = iter_lis_gen0;
	v->known = 1;
}
