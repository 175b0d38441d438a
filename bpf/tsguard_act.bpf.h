// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard kernel side, included at the end of tsguard.bpf.c: iter/tcp
 * programs that act on one socket or sample listeners (docs/kernel.md):
 *   tsg_iter_destroy  closes the socket whose cookie is destroy_cookie, as
 *                     `ss -K` does (bpf_sock_destroy: ECONNABORTED for the
 *                     owner, a reset to the peer)
 *   tsg_iter_queue    one tsg_bpf_queue_rec per listening socket
 * Both run only when user space reads an iterator made of them; they cost
 * nothing otherwise.
 */

/* a weak kfunc: the object still loads on a kernel without it */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym __weak;

/* written by user space before each destroy pass */
__u64 destroy_cookie = 0;
/* TSG_BPF_DESTROY_*, or bpf_sock_destroy's -errno */
__s32 destroy_result = 0;

SEC("iter/tcp")
int tsg_iter_destroy(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	__u64 want = destroy_cookie;
	__u8 state;
	int err;

	if (!skc || !want)
		return 0;
	state = skc->skc_state;
	/* timewait and request sockets are not full sockets: the iterator
	 * holds no lock for them, and bpf_sock_destroy is not for them */
	if (state == TSG_BPF_TCP_TIME_WAIT || state == TSG_BPF_TCP_NEW_SYN_RECV)
		return 0;
	if (!bpf_skc_to_tcp_sock(skc) || bpf_get_socket_cookie(skc) != want)
		return 0;
	if (!bpf_sock_destroy) {
		destroy_result = TSG_BPF_DESTROY_NOKFUNC;
		return 0;
	}
	err = bpf_sock_destroy(skc);
	destroy_result = err ? err : TSG_BPF_DESTROY_DONE;
	destroy_cookie = 0; /* one socket has that cookie: touch nothing else */
	return 0;
}

/* The record of the listener the pass ended at (tsg_iter_queue): read()
 * drops the output of the socket a program stops at, so it is left here,
 * and user space takes it after the namespace's walk (cap_iter_spec.tail). */
struct tsg_bpf_queue_rec queue_last = {};
__u32 queue_last_ok = 0;

SEC("iter/tcp")
int tsg_iter_queue(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tsg_bpf_queue_rec r = {};
	struct tuple t = {};
	struct tcp_sock *tp;
	struct sock *sk;
	bool last;

	if (!skc) {
		/* the end of the walk: every listener was seen */
		if (iter_req_ns)
			iter_lis_learn(iter_req_ns);
		return 0;
	}
	/* the listening hash comes first, and holds only listeners: at the
	 * first other socket every listener was seen. 1 (retry this socket)
	 * makes read() end the pass with EAGAIN instead of walking the whole
	 * established hash (cap_iter_spec.stops). Where the namespace's
	 * listeners are known (tsguard_listen.bpf.h), it ends at the last. */
	if (skc->skc_state != TSG_BPF_TCP_LISTEN) {
		if (iter_req_ns)
			iter_lis_learn(iter_req_ns);
		return 1;
	}
	iter_lis_seen++;
	last = iter_req_ns && iter_lis_last(iter_req_ns);
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	read_tuple(skc, &t);
	r.cookie = bpf_get_socket_cookie(skc);
	r.ino = sock_ino(sk);
	r.sk_cgroup = sk_cgroup_id(sk);
	r.uid = BPF_CORE_READ(sk, sk_uid.val);
	r.netns = sk_netns(skc);
	__builtin_memcpy(r.laddr, t.laddr, 16);
	r.lport = t.lport;
	r.family = t.family;
	r.backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	r.max_backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);
	r.drops = BPF_CORE_READ(sk, sk_drops.counter);
	{
		/* the owner recorded at listen() (CLOSE->LISTEN runs in its process) */
		struct sk_state *st = bpf_sk_storage_get(&sk_stor, sk, 0, 0);

		if (st && st->owner) {
			r.pid = st->pid;
			__builtin_memcpy(r.comm, st->comm, TSG_BPF_COMM_LEN);
		}
	}
	if (last) {
		queue_last = r;
		queue_last_ok = 1;
		return 1;
	}
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
