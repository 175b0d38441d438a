// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard kernel side, included by tsguard.bpf.c: what happens to a
 * timewait socket, which no state tracepoint reports (docs/kernel.md,
 * "TIME_WAIT and its end"):
 *   - tp_btf/timer_expire_entry: the socket's timer (tw_timer, whose
 *     function is tw_timer_handler: tw_timer_fn) fires and kills it: the
 *     end of its TIME_WAIT, or of an orphan's FIN_WAIT2;
 *   - tp_btf/kfree_skb: the segment a timewait socket has just taken is
 *     dropped at the end of tcp_v4_rcv / tcp_v6_rcv (rx_sk is the socket):
 *     a FIN that moved an orphan from FIN_WAIT2 to TIME_WAIT, or a reset
 *     that killed it (it is unhashed then).
 * Each sends one TSG_BPF_F_TWEND record, only while user space follows
 * timewait sockets (tw_follow), for a socket of a watched namespace whose
 * ports pass some rule slot. The scan (capture_reconcile.c) catches what
 * this misses (a timewait socket taken over by a new connection, one that
 * was followed under other rules), less often.
 */

/* the function of a timewait socket's timer (tw_timer_handler), learnt
 * from the first timewait socket a program meets (tw_learn: this one, the
 * iterator); 0 until then, and the timer program reports nothing (user
 * space scans every second meanwhile: capture_twend.c). Reading
 * /proc/kallsyms instead costs about 100 ms at every start. */
__u64 tw_timer_fn = 0;

static __always_inline void tw_learn(const struct tcp_timewait_sock *tw)
{
	if (!tw_timer_fn)
		tw_timer_fn = (__u64)tw->tw_sk.tw_timer.function;
}
/* 1 while user space follows timewait sockets */
__u32 tw_follow = 0;

static __always_inline void tw_send(const struct tuple *t, __u64 cookie, __u32 netns, __u32 to)
{
	struct pcpu *pc = pcpu();
	__u32 lp = t->lport, rp = t->rport;
	struct tsg_bpf_event *e;

	if (!cfg.record_all && !port_bits(lp, rp))
		return; /* no rule slot wants these ports: not followed */
	e = event_new(pc);
	if (!e)
		return;
	e->cookie = cookie;
	event_tuple(e, t);
	e->from = TSG_BPF_TCP_TIME_WAIT;
	e->to = to;
	e->flags = TSG_BPF_F_TWEND;
	e->netns = netns;
	submit_pc(e, pc);
	count_in(pc, TSG_BPF_C_TWEND);
}

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(tsg_tw_expire, struct timer_list *timer, unsigned long baseclk)
{
	const struct sock_common *skc;
	struct tuple t = {};
	__u32 ns;

	if (!tw_follow || !tw_timer_fn || (__u64)timer->function != tw_timer_fn)
		return 0;
	/* tw_timer is a field of the timewait socket (sock_common first) */
	skc = (const void *)((unsigned long)timer -
			     bpf_core_field_offset(struct inet_timewait_sock, tw_timer));
	ns = sk_netns(skc);
	if (!netns_watched(ns))
		return 0;
	read_tuple_x(skc, &t, false);
	tw_send(&t, BPF_CORE_READ(skc, skc_cookie.counter), ns, TSG_BPF_TCP_CLOSE);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tsg_tw_segment, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct tcp_timewait_sock *tw;
	struct sock_common *skc;
	struct tuple t = {};
	__u32 ns, to;

	if (!rx_sk || rx_sk->__sk_common.skc_state != TSG_BPF_TCP_TIME_WAIT)
		return 0;
	tw = bpf_skc_to_tcp_timewait_sock(rx_sk);
	if (!tw)
		return 0;
	tw_learn(tw);
	if (!tw_follow)
		return 0;
	skc = &tw->tw_sk.__tw_common;
	if (!skc->skc_nulls_node.pprev)
		to = TSG_BPF_TCP_CLOSE; /* killed (a reset): unhashed */
	else if (tw->tw_sk.tw_substate == TSG_BPF_TCP_TIME_WAIT)
		to = TSG_BPF_TCP_TIME_WAIT; /* the peer's FIN came (or came before) */
	else
		return 0;
	ns = skc->skc_net.net->ns.inum;
	if (!netns_watched(ns))
		return 0;
	read_tuple_x(skc, &t, true);
	tw_send(&t, skc->skc_cookie.counter, ns, to);
	return 0;
}
