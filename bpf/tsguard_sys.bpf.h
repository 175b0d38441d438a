// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard: the syscall-exit programs, included by tsguard.bpf.c (they use its
 * maps and helpers): connect()'s return brings the local port of a connect in
 * progress, accept()'s return the owner of an accepted socket. Both attach
 * only where the kernel has the tracepoints; tsguard runs without them.
 */

/* ---- the socket behind a file descriptor, and what the programs keep of it ------ */

/* The TCP socket behind the calling task's file descriptor fd, else NULL. */
static __always_inline struct sock *fd_tcp_sock(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *f = NULL;
	struct socket *so;
	struct sock *sk;

	if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	if (!so || BPF_CORE_READ(so, file) != f) /* not a socket's file */
		return NULL;
	sk = BPF_CORE_READ(so, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return NULL;
	return sk;
}

/*
 * The socket's sk_stor value as a tracepoint can see it (no socket storage
 * helpers there): read through the socket's storage cache slot of sk_stor,
 * which every look-up of the BTF programs fills; else from the storage's
 * list (a socket whose storage was only created so far, at its connect, has
 * nothing cached yet; a socket holds one element per storage map that has
 * one, of which tsguard's are few). 0: found, in *out; -1: not found.
 */
#define STOR_LIST_MAX 4

static __always_inline int stor_peek(const struct sock *sk, struct sk_state *out)
{
	struct bpf_local_storage_map *smap = (struct bpf_local_storage_map *)&sk_stor;
	struct bpf_local_storage *ls = BPF_CORE_READ(sk, sk_bpf_storage);
	struct bpf_local_storage_data *sd = NULL, *map_of = NULL;
	struct hlist_node *n;
	__u32 idx;

	if (!ls)
		return -1;
	idx = smap->cache_idx & 15; /* a map field: a plain load */
	if (bpf_probe_read_kernel(&sd, sizeof(sd), (void *)ls +
				  bpf_core_field_offset(struct bpf_local_storage, cache) +
				  idx * sizeof(sd)) ||
	    !sd || bpf_probe_read_kernel(&map_of, sizeof(map_of), &sd->smap) ||
	    (void *)map_of != smap) {
		sd = NULL;
		n = BPF_CORE_READ(ls, list.first);
		for (int i = 0; i < STOR_LIST_MAX && n; i++) {
			void *se = (void *)n - bpf_core_field_offset(struct bpf_local_storage_elem, snode);
			struct bpf_local_storage_data *d =
			    se + bpf_core_field_offset(struct bpf_local_storage_elem, sdata);

			if ((void *)BPF_CORE_READ(d, smap) == smap) {
				sd = d;
				break;
			}
			n = BPF_CORE_READ(n, next);
		}
		if (!sd)
			return -1;
	}
	return bpf_probe_read_kernel(out, sizeof(*out),
				     (void *)sd + bpf_core_field_offset(struct bpf_local_storage_data,
									 data)) ? -1 : 0;
}

/*
 * An update of a socket user space knows (from == to == `state`: not a
 * transition, fields learnt later), with sk's tuple and uid; the caller
 * fills what else it learnt and submits. NULL: the ring buffer is full.
 */
static __always_inline struct tsg_bpf_event *update_event(struct sock *sk, __u64 cookie,
							  const struct tuple *t, __u8 state,
							  struct pcpu *pc)
{
	struct tsg_bpf_event *e = event_new(pc);

	if (!e)
		return NULL;
	e->cookie = cookie;
	e->uid = BPF_CORE_READ(sk, sk_uid.val);
	event_tuple(e, t);
	e->from = e->to = state;
	e->flags = TSG_BPF_F_UPDATE;
	e->netns = sk_netns(&sk->__sk_common);
	e->sk_cgroup = sk_cgroup_id(sk);
	return e;
}

/* ---- connect()'s return: the local port of a connect in progress ---------------- */

/*
 * Process context, right after inet_hash_connect chose the port. A connect
 * that returns 0 is done (TCP: its next transition carried the port; or no
 * TCP socket at all): nothing to do, no look-up. Otherwise (-EINPROGRESS
 * of a non-blocking connect, a signal, a timeout) the socket behind the
 * call's fd, if still in SYN_SENT, whose CLOSE->SYN_SENT crossed without
 * its port, gets an update with it. No map is written at the connect.
 */
SEC("tracepoint/syscalls/sys_exit_connect")
int tsg_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs;
	struct sk_state *st, peek;
	struct tsg_bpf_event *e;
	struct pcpu *pc;
	struct tuple t = {};
	struct sock *sk;
	__u64 key, cookie;

	if (ctx->ret == 0)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	sk = fd_tcp_sock(PT_REGS_PARM1_CORE_SYSCALL(regs));
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != TSG_BPF_TCP_SYN_SENT)
		return 0;
	key = (__u64)sk;
	st = fallback ? bpf_map_lookup_elem(&fb_socks, &key) : NULL;
	if (st) {
		cookie = st->cookie;
	} else {
		cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
		if (!cookie || stor_peek(sk, &peek) || peek.cookie != cookie)
			return 0; /* no program kept it */
		st = &peek;
	}
	if (!st->sent || st->lport)
		return 0; /* user space does not know it, or it has the port */
	read_tuple(&sk->__sk_common, &t);
	if (!t.lport)
		return 0;
	pc = pcpu();
	e = update_event(sk, cookie, &t, TSG_BPF_TCP_SYN_SENT, pc);
	if (!e)
		return 0;
	submit_pc(e, pc);
	count_in(pc, TSG_BPF_C_UPDATE);
	return 0;
}

/* ---- accept()'s return: the owner of an accepted socket ------------------------ */

/*
 * Process context, the new fd: the accepting task is the socket's owner
 * (rules.md), also when another process (a parent) listens. The owner goes
 * into the socket's state: directly in the fallback's hash, else through
 * acc_owner to the next transition. When user space may know the socket
 * already (an event of it crossed, or its storage cannot be read), it gets
 * the new owner at once: an update of the socket's current state.
 */
static __always_inline int accept_exit(long ret)
{
	struct sock *sk = ret >= 0 ? fd_tcp_sock(ret) : NULL;
	__u64 key = (__u64)sk, cookie;
	struct sk_state *st, peek;
	struct acc_owner o = {};
	struct tsg_bpf_event *e;
	struct pcpu *pc;
	struct tuple t = {};
	bool known = true;

	if (!sk || !netns_watched(sk_netns(&sk->__sk_common)))
		return 0;
	o.pid = bpf_get_current_pid_tgid() >> 32;
	st = fallback ? bpf_map_lookup_elem(&fb_socks, &key) : NULL;
	if (st) {
		cookie = st->cookie;
	} else {
		cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
		if (!cookie)
			return 0; /* never seen by the BTF programs: nothing to move */
		if (stor_peek(sk, &peek) == 0 && peek.cookie == cookie)
			st = &peek;
		else
			known = false;
	}
	if (st && st->owner && st->pid == o.pid)
		return 0; /* the listener's process accepted: no change */
	o.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	if (st == &peek || !st) {
		__sync_fetch_and_add(&acc_pending, 1); /* first: a reader may see more, never less */
		if (bpf_map_update_elem(&acc_owner, &cookie, &o, BPF_ANY))
			__sync_fetch_and_add(&acc_pending, -1);
	}
	if (st && st != &peek) {
		/* the fallback's own state: write the owner there */
		st->pid = o.pid;
		st->cgroup_id = o.cgroup_id;
		__builtin_memcpy(st->comm, o.comm, TSG_BPF_COMM_LEN);
		st->owner = 1;
		st->gen = 0;
	}
	if (known && !st->sent)
		return 0;
	read_tuple(&sk->__sk_common, &t);
	pc = pcpu();
	e = update_event(sk, cookie, &t, BPF_CORE_READ(sk, __sk_common.skc_state), pc);
	if (!e)
		return 0;
	e->pid = o.pid;
	e->cgroup_id = o.cgroup_id;
	__builtin_memcpy(e->comm, o.comm, TSG_BPF_COMM_LEN);
	e->flags |= TSG_BPF_F_OWNER;
	submit_pc(e, pc);
	count_in(pc, TSG_BPF_C_UPDATE);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tsg_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tsg_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}
