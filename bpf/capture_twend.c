/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the kernel's reports on timewait sockets (bpf/tsguard_tw.bpf.h):
 * what loading them needs, attaching them, and keeping tw_follow in step
 * with what user space follows. Without them (the classic tracepoint, a
 * kernel without kfree_skb's rx_sk), and until they know the function of a
 * timewait socket's timer (learnt from the first timewait socket they or
 * the iterator meet), the scan finds the ends of timewait sockets, every
 * second.
 * docs/kernel.md, "TIME_WAIT and its end".
 */
#include "capture_priv.h"
#include "log.h"
#include "tsguard.skel.h"

#include <bpf/btf.h>
#include <errno.h>
#include <string.h>

/* Does tp_btf/kfree_skb pass the receiving socket (rx_sk, Linux 6.12)? */
static bool kfree_skb_has_rx_sk(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool yes = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
	if (id > 0 && (t = btf__type_by_id(btf, id)) && (t = btf__type_by_id(btf, t->type)) &&
	    btf_is_ptr(t) && (t = btf__type_by_id(btf, t->type)) && btf_is_func_proto(t))
		yes = btf_vlen(t) >= 5; /* the context, skb, location, reason, rx_sk */
	btf__free(btf);
	return yes;
}

void cap_twend_configure(struct tsguard_bpf *s, bool classic)
{
	bool load = !classic && kfree_skb_has_rx_sk();

	bpf_program__set_autoload(s->progs.tsg_tw_expire, load);
	bpf_program__set_autoload(s->progs.tsg_tw_segment, load);
}

bool cap_twend_attach(struct tsguard_bpf *s)
{
	const char *why = "kfree_skb has no rx_sk in this kernel, or the classic tracepoint";

	if (bpf_program__autoload(s->progs.tsg_tw_expire)) {
		s->links.tsg_tw_expire = bpf_program__attach(s->progs.tsg_tw_expire);
		s->links.tsg_tw_segment =
		    s->links.tsg_tw_expire ? bpf_program__attach(s->progs.tsg_tw_segment) : NULL;
		if (s->links.tsg_tw_segment)
			return true;
		why = strerror(errno);
		bpf_link__destroy(s->links.tsg_tw_expire);
		s->links.tsg_tw_expire = NULL;
	}
	log_info("capture: timewait ends are not reported by the kernel (%s): the scan finds "
		 "them, every second",
		 why);
	return false;
}

bool cap_twend_active(const struct tsg_capture *c)
{
	return c->tw_hooks && __atomic_load_n(&c->skel->bss->tw_timer_fn, __ATOMIC_RELAXED);
}

void cap_twend_follow(struct tsg_capture *c)
{
	uint32_t v;

	if (!c->tw_hooks)
		return;
	/* also before the first is followed: an orphan's timewait socket may get
	 * the peer's FIN before the poll that follows its entry. A timewait
	 * socket has no cgroup, so the cgroup gate does not hold these reports
	 * back: those of sockets nobody follows cross and are dropped here. */
	v = c->tw_n > 0 || cap_plan_wants(c, TSG_TIME_WAIT) || cap_plan_wants(c, TSG_FIN_WAIT2);
	if (c->skel->bss->tw_follow != v)
		__atomic_store_n(&c->skel->bss->tw_follow, v, __ATOMIC_SEQ_CST);
}

/* How often a light pass walks on past the listeners it knows of, learning
 * their count again (bpf/tsguard_listen.bpf.h). */
#define LIS_LEARN_MS 10000

void cap_twend_lis_stop(struct tsg_capture *c, bool may)
{
	uint64_t t = tsg_mono_ns();
	bool stop = may && t < c->next_lis_learn_ns;

	if (may && !stop)
		c->next_lis_learn_ns = t + (uint64_t)LIS_LEARN_MS * TSG_NSEC_PER_MSEC;
	c->skel->bss->iter_lis_stop = stop;
}

void cap_twend_iter_skip(struct tsg_capture *c, bool skip)
{
	cap_twend_lis_stop(c, skip);
	c->skel->bss->iter_no_tw = skip;
	c->skel->bss->iter_req_ns = 0; /* a new pass: no namespace read yet */
}

bool cap_twend_ns_begin(struct tsg_capture *c, uint32_t ino)
{
	struct tsguard_bpf__bss *b = c->skel->bss;
	struct tsg_bpf_ns_lis v;

	if (bpf_map__lookup_elem(c->skel->maps.ns_lis, &ino, sizeof(ino), &v, sizeof(v), 0))
		memset(&v, 0, sizeof(v));
	b->iter_lis_gen0 = v.gen;
	b->iter_req_ns = ino;
	b->iter_req_left = 0;
	b->iter_lis_seen = 0;
	b->iter_lis_done = 0;
	/* the light pass: a namespace known to hold no listener holds no
	 * request socket either */
	return b->iter_lis_stop && v.known && v.known_gen == v.gen && !v.count;
}
