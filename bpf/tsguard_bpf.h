/* SPDX-License-Identifier: MIT */
/*
 * tsguard: types shared by the BPF programs (tsguard.bpf.c) and user space
 * (bpf/capture*.c). Fixed-width types only; the layout is the ABI between
 * the two halves and is checked by _Static_assert in capture.c.
 */
#ifndef TSGUARD_BPF_H
#define TSGUARD_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TSG_BPF_NSTATES 13 /* TCP_ESTABLISHED (1) .. TCP_NEW_SYN_RECV (12), 0 unused */
#define TSG_BPF_COMM_LEN 16

/* Kernel TCP state numbers used by the BPF side. */
#define TSG_BPF_TCP_ESTABLISHED 1
#define TSG_BPF_TCP_SYN_SENT 2
#define TSG_BPF_TCP_SYN_RECV 3
#define TSG_BPF_TCP_FIN_WAIT1 4
#define TSG_BPF_TCP_FIN_WAIT2 5
#define TSG_BPF_TCP_TIME_WAIT 6
#define TSG_BPF_TCP_CLOSE 7
#define TSG_BPF_TCP_CLOSE_WAIT 8
#define TSG_BPF_TCP_LAST_ACK 9
#define TSG_BPF_TCP_LISTEN 10
#define TSG_BPF_TCP_CLOSING 11
#define TSG_BPF_TCP_NEW_SYN_RECV 12

/* tsg_bpf_event.flags */
#define TSG_BPF_F_OWNER 0x01   /* pid/comm/cgroup_id are the socket's owner */
#define TSG_BPF_F_TW 0x02      /* ->CLOSE of a socket that goes on as a timewait socket:
				* `to` is its state, TIME_WAIT, or FIN_WAIT2 (from == to) for
				* an orphan waiting for the peer's FIN */
#define TSG_BPF_F_FALLBACK 0x04 /* sent by the classic tracepoint program */
#define TSG_BPF_F_UPDATE 0x08   /* not a transition: from == to, fields learnt later
				 * (the local port of a connect, at connect()'s return;
				 * the owner of an accepted socket, at accept()'s) */
#define TSG_BPF_F_TWEND 0x20    /* not a transition: the timewait socket of the 4-tuple
				 * (cookie: the one it inherited) is gone (to CLOSE) or in
				 * TIME_WAIT now (to TIME_WAIT: an orphan got the peer's FIN);
				 * bpf/tsguard_tw.bpf.h */
#define TSG_BPF_F_CGROUP 0x10   /* not a transition: the cgroup gate has no verdict for
				 * sk_cgroup in generation `pid`; user space writes one
				 * into cg_verdict (only sk_cgroup, netns, pid are set) */

/* One transition, ring buffer record. Addresses are IPv6 or IPv4-mapped. */
struct tsg_bpf_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 since_ns;  /* when the socket entered `from`; 0 unknown */
	__u64 cookie;    /* socket cookie: the socket's id */
	__u64 cgroup_id; /* owner's cgroup v2 id; 0 unknown */
	__u32 pid;       /* owner's tgid */
	__u32 uid;       /* sk_uid (socket creator) */
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport, rport; /* host byte order */
	__u8 family;        /* 4 or 6 (an IPv4-mapped peer is 4) */
	__u8 from, to;
	__u8 flags; /* TSG_BPF_F_* */
	char comm[TSG_BPF_COMM_LEN];
	__u64 sk_cgroup; /* the socket's own cgroup v2 id (sk_cgrp_data); 0 unknown */
	__u32 netns;     /* inode of the socket's network namespace */
	__u32 pad2;
};

/* Kernel counters: per-CPU array indices. */
enum tsg_bpf_counter {
	TSG_BPF_C_SEEN = 0,  /* TCP transitions of our network namespace */
	TSG_BPF_C_FILTERED,  /* dropped: no rule slot wants it */
	TSG_BPF_C_SENT,      /* written to the ring buffer */
	TSG_BPF_C_LOST,      /* ring buffer reserve failed */
	TSG_BPF_C_MAP_FULL,  /* socket state could not be stored */
	TSG_BPF_C_TW,        /* ->CLOSE reported as ->TIME_WAIT */
	TSG_BPF_C_OTHER_NS,  /* transitions of namespaces not watched (--netns host, or no
			      * rule names them: netns_allow) */
	TSG_BPF_C_NESTED,    /* handled by the second copy: the first was nested */
	TSG_BPF_C_UPDATE,    /* updates sent (local port of a connect in progress, accept()'s owner) */
	TSG_BPF_C_OTHER_CG,  /* transitions of cgroups the cgroup gate denies (no rule names
			      * their container or pod) */
	TSG_BPF_C_CG_ASKED,  /* cgroups the gate asked user space about */
	TSG_BPF_C_TWEND,     /* timewait ends and FINs sent (TSG_BPF_F_TWEND) */
	TSG_BPF_C_N
};

/* LPM trie key for laddr / raddr. */
struct tsg_bpf_lpm_key {
	__u32 prefixlen; /* 0..128 */
	__u8 addr[16];
};

/* tsg_bpf_cfg.skip: plan maps the programs need not look up */
#define TSG_BPF_SKIP_LADDR 0x1 /* the laddr trie holds ::/0 only: every address has laddr_all */
#define TSG_BPF_SKIP_RADDR 0x2 /* the raddr trie holds ::/0 only: raddr_all */
#define TSG_BPF_SKIP_COMM 0x4  /* the comm map is empty: comm_default for every comm */
#define TSG_BPF_SKIP_UID 0x8   /* the uid map is empty: uid_default for every uid */
#define TSG_BPF_SKIP_LPORT 0x10 /* every local port has the same bits: lport_all */
#define TSG_BPF_SKIP_RPORT 0x20 /* every remote port has the same bits: rport_all */

/* Settings written by user space (in .bss, read with READ_ONCE). */
struct tsg_bpf_cfg {
	__u64 comm_default; /* slots for a comm not in the comm map */
	__u64 uid_default;  /* slots for a uid not in the uid map */
	__u32 gen;          /* plan generation; cached verdicts of other generations are stale */
	__u32 record_all;   /* send every transition */
	__u64 laddr_all;    /* with TSG_BPF_SKIP_LADDR: the bits of every local address */
	__u64 raddr_all;    /* with TSG_BPF_SKIP_RADDR: the bits of every remote address */
	__u32 skip;         /* TSG_BPF_SKIP_*; set only while it holds (capture_maps.c) */
	__u32 pad;
	__u64 lport_all;    /* with TSG_BPF_SKIP_LPORT: the bits of every local port */
	__u64 rport_all;    /* with TSG_BPF_SKIP_RPORT: the bits of every remote port */
};

/* netns_allow: consulted only while netns_filter (.bss) is 1; the value is
 * 1 for a namespace some rule names. */
#define TSG_BPF_NETNS_MAX 4096

/* ns_lis: the listeners of each network namespace (tsguard_listen.bpf.h) */
struct tsg_bpf_ns_lis {
	__u64 gen;	 /* listeners came or went this many times */
	__u64 known_gen; /* the gen `count` was learnt at */
	__u32 count;	 /* the namespace's listeners at known_gen */
	__u32 known;	 /* count was learnt */
};

/* cg_verdict: the cgroup gate's verdicts, by the socket's own cgroup id,
 * consulted only while cg_filter (.bss) is 1. A verdict of another
 * generation than cg_gen (.bss) is stale: the cgroup passes and is asked
 * about again. */
#define TSG_BPF_CG_MAX 16384
#define TSG_BPF_CG_PENDING 0 /* asked, no answer yet: passes */
#define TSG_BPF_CG_ALLOW 1
#define TSG_BPF_CG_DENY 2

struct tsg_bpf_cg_verdict {
	__u32 gen;
	__u32 verdict; /* TSG_BPF_CG_* */
};

/* tsg_bpf_iter_rec.kind */
#define TSG_BPF_ITER_FULL 0     /* a full socket */
#define TSG_BPF_ITER_TIMEWAIT 1 /* a timewait socket (inet_timewait_sock) */
#define TSG_BPF_ITER_REQUEST 2  /* a request socket: a half-open connection */

/* iter/tcp record (snapshot, reconcile scan, resync), written with bpf_seq_write. */
struct tsg_bpf_iter_rec {
	__u64 cookie; /* full socket: its cookie; timewait: the cookie it inherited (0: none);
		       * request: 0 */
	__u64 ino;    /* full socket: socket inode (/proc/PID/fd), 0 if none */
	__u64 cgroup_id; /* full socket: its owner (when `owner`) */
	__u32 uid;    /* full socket: sk_uid */
	__u32 pid;    /* full socket: its owner's tgid (when `owner`) */
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport, rport;
	__u8 family;
	__u8 state; /* as ss shows it: timewait: tw_substate (TIME_WAIT, or FIN_WAIT2 for an
		     * orphan waiting for the peer's FIN); request: NEW_SYN_RECV */
	__u8 kind;  /* TSG_BPF_ITER_* */
	__u8 owner; /* full socket: pid/comm/cgroup_id are its owner (socket storage) */
	__u32 netns;     /* inode of the socket's network namespace */
	__u32 pad;
	__u64 sk_cgroup; /* full socket: its own cgroup v2 id; 0 unknown */
	char comm[TSG_BPF_COMM_LEN];
};

/* iter/tcp tsg_iter_queue record: one listening socket's accept queue. */
struct tsg_bpf_queue_rec {
	__u64 cookie;
	__u64 ino;       /* socket inode, 0 if none */
	__u64 sk_cgroup; /* its own cgroup v2 id; 0 unknown */
	__u32 uid;
	__u32 netns;
	__u8 laddr[16];
	__u16 lport;
	__u8 family;
	__u8 pad;
	__u32 backlog;     /* sk_ack_backlog: complete, not yet accepted */
	__u32 max_backlog; /* sk_max_ack_backlog: the listen() backlog, capped by somaxconn */
	__u32 drops;       /* sk_drops: the listener's drops (tcp_listendrop), since it was made */
	__u32 pid;         /* the owner from socket storage (listen()); 0 unknown */
	__u32 pad2;
	char comm[TSG_BPF_COMM_LEN];
};

/* tsg_iter_destroy's verdict (.bss destroy_result) */
#define TSG_BPF_DESTROY_NONE 0	    /* no socket with that cookie */
#define TSG_BPF_DESTROY_DONE 1	    /* found and destroyed */
#define TSG_BPF_DESTROY_NOKFUNC (-95) /* -EOPNOTSUPP: no bpf_sock_destroy in this kernel */

#endif
