// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard kernel side, included by tsguard.bpf.c: the socket iterator that
 * lists every TCP socket for the snapshot, the reconcile scan and the
 * resync (docs/kernel.md).
 */

/* ---- socket iterator: snapshot and TIME_WAIT scan ------------------------------ */

static __always_inline __u64 sock_ino(const struct sock *sk)
{
	const struct socket *s = BPF_CORE_READ(sk, sk_socket);
	const struct inode *inode;

	if (!s)
		return 0;
	inode = &container_of(s, struct socket_alloc, socket)->vfs_inode;
	return BPF_CORE_READ(inode, i_ino);
}

/* A full socket's owner, from its socket storage (recorded at connect() or
 * listen(), inherited by accepted sockets). */
static __always_inline void iter_owner(struct sock *sk, struct tsg_bpf_iter_rec *r)
{
	struct sk_state *st = bpf_sk_storage_get(&sk_stor, sk, 0, 0);

	if (!st || !st->owner)
		return;
	r->owner = 1;
	r->pid = st->pid;
	r->cgroup_id = st->cgroup_id;
	__builtin_memcpy(r->comm, st->comm, TSG_BPF_COMM_LEN);
}

/*
 * The light pass without timewait sockets looks for request sockets only,
 * and their listeners. The listening hash comes first: the listeners' qlen
 * (their request sockets) says how many the namespace holds. Once that many
 * were seen, at the next socket of the established hash, the rest of the
 * walk would find nothing more: true then (the pass ends). A request made
 * after its listener was read is found by the next pass. Where the
 * namespace's listeners are known (tsguard_listen.bpf.h) and none has a
 * request, the pass ends at the last of them.
 */
static __always_inline bool iter_requests_done(struct sock_common *skc, __u8 state)
{
	__u32 ns = skc->skc_net.net->ns.inum;
	struct tcp_sock *tp;

	if (ns != iter_req_ns) {
		iter_req_ns = ns;
		iter_req_left = 0;
		iter_lis_seen = 0;
		iter_lis_done = 0;
	}
	if (state == TSG_BPF_TCP_LISTEN) {
		tp = bpf_skc_to_tcp_sock(skc);
		if (tp)
			iter_req_left += tp->inet_conn.icsk_accept_queue.qlen.counter;
		iter_lis_seen++;
		/* the last listener known and no request: the pass ends here (this
		 * listener's record goes too; it would name no request's owner) */
		return iter_req_left <= 0 && iter_lis_last(ns);
	}
	iter_lis_learn(ns); /* the established hash: every listener was seen */
	if (state == TSG_BPF_TCP_NEW_SYN_RECV) {
		iter_req_left--;
		return false;
	}
	return iter_req_left <= 0;
}

/* Every TCP socket as `ss -tan` shows it; iter_tw_only: the light scan,
 * timewait and request sockets, and listeners (the owners of requests).
 * ctx->sk_common is a BTF pointer: its fields are plain loads (the
 * verifier makes them fault-safe), no bpf_probe_read_kernel() each. */
SEC("iter/tcp")
int tsg_iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct tsg_bpf_iter_rec r = {};
	struct tcp_timewait_sock *tw;
	struct tuple t = {};
	struct tcp_sock *tp;
	__u8 state;

	if (!skc) {
		/* the end of the walk (not of a pass that stopped early) */
		if (iter_no_tw && iter_tw_only && iter_req_ns)
			iter_lis_learn(iter_req_ns);
		return 0;
	}
	state = skc->skc_state;
	if (iter_no_tw && iter_tw_only && iter_requests_done(skc, state))
		return 1; /* read() ends the pass with EAGAIN (cap_iter_spec.stops) */
	if (iter_no_tw && state == TSG_BPF_TCP_TIME_WAIT)
		return 0;
	if (iter_tw_only && state != TSG_BPF_TCP_TIME_WAIT && state != TSG_BPF_TCP_NEW_SYN_RECV &&
	    state != TSG_BPF_TCP_LISTEN)
		return 0;
	read_tuple_x(skc, &t, true);
	if (state == TSG_BPF_TCP_TIME_WAIT) {
		r.kind = TSG_BPF_ITER_TIMEWAIT;
		r.cookie = skc->skc_cookie.counter;
		/* FIN_WAIT2 for an orphan still waiting for the peer's FIN (read
		 * as before where the helper does not know the socket's protocol,
		 * e.g. IPv6 built as a module) */
		tw = bpf_skc_to_tcp_timewait_sock(skc);
		if (tw)
			tw_learn(tw);
		state = tw ? tw->tw_sk.tw_substate
			   : BPF_CORE_READ((struct inet_timewait_sock *)skc, tw_substate);
	} else if (state == TSG_BPF_TCP_NEW_SYN_RECV) {
		r.kind = TSG_BPF_ITER_REQUEST;
	} else {
		tp = bpf_skc_to_tcp_sock(skc);
		if (!tp)
			return 0;
		r.cookie = bpf_get_socket_cookie(skc);
		r.ino = sock_ino((struct sock *)tp);
		r.uid = tp->inet_conn.icsk_inet.sk.sk_uid.val;
		r.sk_cgroup = sk_cgroup_id((struct sock *)tp);
		iter_owner((struct sock *)tp, &r);
	}
	r.netns = skc->skc_net.net->ns.inum;
	__builtin_memcpy(r.laddr, t.laddr, 16);
	__builtin_memcpy(r.raddr, t.raddr, 16);
	r.lport = t.lport;
	r.rport = t.rport;
	r.family = t.family;
	r.state = state;
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
