// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard kernel side, included by tsguard.bpf.c: a socket's 4-tuple as
 * every record carries it (addresses as IPv6, IPv4 mapped; host-order
 * ports), read from the sock_common that full, timewait and request
 * sockets all start with.
 */

struct tuple {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport, rport;
	__u8 family;
};

static __always_inline void map_v4(__u8 *dst, __u32 a)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &a, 4);
}

static __always_inline bool is_v4mapped(const __u8 *a)
{
	__u64 hi;
	__u32 mid;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return hi == 0 && mid == bpf_htonl(0x0000ffff);
}

/*
 * A field of skc: a plain load where skc is a BTF pointer (tp_btf, iterator:
 * the verifier makes it a fault-safe load, no helper call), else a
 * bpf_probe_read_kernel() (the classic tracepoint's address). `direct` is a
 * constant at every call, so only one of the two is compiled in.
 */
#define SKC_READ(direct, skc, field) ((direct) ? (skc)->field : BPF_CORE_READ(skc, field))

/* Works on full and timewait sockets (both start with sock_common). */
static __always_inline void read_tuple_x(const struct sock_common *skc, struct tuple *t,
					 bool direct)
{
	__u16 fam = SKC_READ(direct, skc, skc_family);

	t->lport = SKC_READ(direct, skc, skc_num);
	t->rport = bpf_ntohs(SKC_READ(direct, skc, skc_dport));
	if (fam == AF_INET) {
		map_v4(t->laddr, SKC_READ(direct, skc, skc_rcv_saddr));
		map_v4(t->raddr, SKC_READ(direct, skc, skc_daddr));
		t->family = 4;
	} else if (direct) {
		__builtin_memcpy(t->laddr, skc->skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
		__builtin_memcpy(t->raddr, skc->skc_v6_daddr.in6_u.u6_addr8, 16);
		t->family = is_v4mapped(t->raddr) ? 4 : 6;
	} else {
		BPF_CORE_READ_INTO(&t->laddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->raddr, skc, skc_v6_daddr.in6_u.u6_addr8);
		t->family = is_v4mapped(t->raddr) ? 4 : 6;
	}
}

static __always_inline void read_tuple(const struct sock_common *skc, struct tuple *t)
{
	read_tuple_x(skc, t, false);
}
