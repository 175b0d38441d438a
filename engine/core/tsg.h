/* SPDX-License-Identifier: MIT */
/*
 * tsguard: core types shared by every user-space module.
 *
 * Everything here is plain data: TCP states, the normalised transition
 * event that the kernel capture and the replay reader both produce, and the
 * socket attributes that rules match on.
 */
#ifndef TSG_TSG_H
#define TSG_TSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TSG_VERSION "0.1.0"

/* TCP states, numbered as the kernel numbers them (include/net/tcp_states.h). */
enum tsg_state {
	TSG_STATE_NONE = 0, /* unknown / not yet seen */
	TSG_ESTABLISHED = 1,
	TSG_SYN_SENT,
	TSG_SYN_RECV,
	TSG_FIN_WAIT1,
	TSG_FIN_WAIT2,
	TSG_TIME_WAIT,
	TSG_CLOSE,
	TSG_CLOSE_WAIT,
	TSG_LAST_ACK,
	TSG_LISTEN,
	TSG_CLOSING,
	TSG_NEW_SYN_RECV,
	TSG_NSTATES
};

typedef uint16_t tsg_statemask; /* bit (1u << state) per state */
#define TSG_STATEMASK_ALL ((tsg_statemask)(((1u << TSG_NSTATES) - 1) & ~1u))

/* "SYN_SENT" etc.; "NONE" for 0; NULL when out of range. */
const char *tsg_state_name(int state);
/* The state names without NONE, NULL-terminated (for "did you mean"). */
const char *const *tsg_state_words(void);
/* Case-insensitive, '-' accepted for '_'. Returns the state or -EINVAL. */
int tsg_state_parse(const char *s);

#define TSG_FAM_IPV4 4
#define TSG_FAM_IPV6 6

/*
 * Socket attribute fields: used for `have` masks, `by:` keys and templates.
 * X(ENUM, name): TSG_SF_ENUM, its name, the struct tsg_sockinfo member and
 * (engine/load) the template field TSG_TF_ENUM all follow from this one list.
 */
#define TSG_SFIELDS(X)                                                                             \
	X(COMM, comm)                                                                              \
	X(PID, pid)                                                                                \
	X(UID, uid)                                                                                \
	X(CGROUP, cgroup)                                                                          \
	X(LADDR, laddr)                                                                            \
	X(LPORT, lport)                                                                            \
	X(RADDR, raddr)                                                                            \
	X(RPORT, rport)                                                                            \
	X(FAMILY, family)                                                                          \
	X(NETNS, netns)		  /* network namespace inode */                                    \
	X(NETNS_NAME, netns_name) /* its name under /run/netns */                                  \
	X(CONTAINER, container)	  /* container id parsed from the cgroup path */                   \
	X(POD, pod)		  /* Kubernetes pod UID parsed from the cgroup path */

#define TSG_SF_ENUM_(e, n) TSG_SF_##e,
enum tsg_sfield { TSG_SFIELDS(TSG_SF_ENUM_) TSG_SF_N };
#define TSG_HAVE(f) (1u << (f))
#define TSG_HAVE_ALL ((1u << TSG_SF_N) - 1)
/* The namespace and container identity of a socket (version 2). A known
 * netns_name, container or pod that is NULL means "none". */
#define TSG_HAVE_IDENT                                                                             \
	(TSG_HAVE(TSG_SF_NETNS) | TSG_HAVE(TSG_SF_NETNS_NAME) | TSG_HAVE(TSG_SF_CONTAINER) |       \
	 TSG_HAVE(TSG_SF_POD))

/* Name of a socket field ("comm", "pid", ...), and its parse (-EINVAL). */
const char *tsg_sfield_name(int f);
int tsg_sfield_parse(const char *s);
/* The socket field names, NULL-terminated. */
const char *const *tsg_sfield_words(void);

#define TSG_COMM_LEN 16

/*
 * What is known about a socket. Addresses are 16 bytes: IPv6, or IPv4 as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d). `family` is TSG_FAM_IPV4 for an IPv4
 * peer even on a dual-stack (AF_INET6) socket.
 */
struct tsg_sockinfo {
	uint32_t have; /* TSG_HAVE(TSG_SF_*) bits: which fields are known */
	uint8_t family;
	uint16_t lport, rport;
	uint8_t laddr[16];
	uint8_t raddr[16];
	uint32_t pid, uid;
	char comm[TSG_COMM_LEN]; /* NUL-terminated */
	const char *cgroup;      /* interned (tsg_intern), or NULL */
	uint32_t netns;		 /* inode of the socket's network namespace; 0 unknown */
	const char *netns_name;	 /* interned name under /run/netns; NULL unknown or none */
	const char *container;	 /* interned container id; NULL when none */
	const char *pod;	 /* interned pod UID; NULL when none */
};

/*
 * Copies the fields that `fields` (TSG_HAVE bits) selects and src knows
 * (src->have & fields) into dst and marks them known there; dst's other
 * fields stay as they are.
 */
void tsg_sockinfo_copy(struct tsg_sockinfo *dst, const struct tsg_sockinfo *src, uint32_t fields);

enum tsg_event_kind { TSG_EV_TRANSITION = 0, TSG_EV_QUEUE };

/* A listening socket's accept queue at one moment (queue rules). */
struct tsg_queue_sample {
	uint32_t queue;   /* connections complete but not yet accepted (sk_ack_backlog) */
	uint32_t backlog; /* the queue's limit (sk_max_ack_backlog) */
	uint64_t drops;   /* connections dropped because this queue was full, counted
			   * from when tsguard began to watch the listener (running count) */
};

/*
 * A normalised TCP state transition: what the kernel capture (with TIME_WAIT
 * derived) and the replay reader deliver to the engine.
 */
struct tsg_event {
	uint64_t ts_ns;    /* event clock (CLOCK_MONOTONIC live; file ts in replay) */
	uint64_t sk;       /* socket identity for its lifetime */
	uint8_t from, to;  /* enum tsg_state; from may be TSG_STATE_NONE (unknown) */
	uint8_t snapshot;  /* 1: synthesised from the startup snapshot */
	uint64_t since_ns; /* when sk entered `from`, 0 if unknown */
	struct tsg_sockinfo info; /* fields listed in info.have; merged into what is known */
	/* TSG_EV_QUEUE: a queue sample of the listening socket `sk` (from = to =
	 * TSG_LISTEN, so that a reader that knows only transitions sees a
	 * duplicate and ignores it) */
	uint8_t kind; /* enum tsg_event_kind; 0: a transition */
	struct tsg_queue_sample q;
};

/* A 64-bit integer mixed for hash tables (murmur3's finaliser, first half). */
static inline uint64_t tsg_hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

/* The one string hash (FNV-1a, 64 bit): tsg_hash_bytes goes on from h
 * (TSG_HASH_SEED to start), tsg_hash_str hashes a NUL-terminated string. */
#define TSG_HASH_SEED 1469598103934665603ull
uint64_t tsg_hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t tsg_hash_str(const char *s);

/* Socket id for a string name (replay "sk"): stable within the process.
 * Up to 4M names are kept (then the id is a hash, printed as a number). */
uint64_t tsg_sk_from_string(const char *s);
/* Inverse where known (replay), else formats the number; buf >= 32 bytes. */
const char *tsg_sk_to_string(uint64_t sk, char *buf, size_t len);

/*
 * Process-wide string interning (cgroup paths, the engine's comm). Bounded: at
 * the bound NULL is returned and tsg_intern_dropped() counts it.
 */
const char *tsg_intern(const char *s);
uint64_t tsg_intern_dropped(void);

/* Address helpers: "10.0.0.1" / "fd00::1" -> 16 bytes (v4 mapped); 0 or -EINVAL. */
int tsg_addr_parse(const char *s, uint8_t out[16], uint8_t *family);
bool tsg_addr_is_v4mapped(const uint8_t a[16]);
/*
 * One rule for live capture and replay: a socket whose peer address is
 * IPv4-mapped (::ffff:a.b.c.d, an IPv4 peer of a dual-stack socket) is an
 * IPv4 socket for matching, keys and output, whatever family it was given.
 * Changes nothing while the peer address is not known.
 */
void tsg_sockinfo_norm_family(struct tsg_sockinfo *in);
/* Formats v4-mapped as dotted quad. buf >= 46 bytes. */
const char *tsg_addr_format(const uint8_t a[16], char *buf, size_t len);

/* "500ms" "1.5s" "10m" "2h" -> ns; 0 or -EINVAL (also for negative/overflow). */
int tsg_duration_parse(const char *s, uint64_t *out_ns);
/* ns -> "500ms", "1.5s", "5m", "5m30s", "1h2m"; buf >= 32 bytes. */
const char *tsg_duration_format(uint64_t ns, char *buf, size_t len);

/* CLOCK_MONOTONIC (the clock of bpf_ktime_get_ns and of live events) and
 * CLOCK_REALTIME, in nanoseconds. */
uint64_t tsg_mono_ns(void);
int64_t tsg_wall_ns(void);

#define TSG_NSEC_PER_SEC 1000000000ull
#define TSG_NSEC_PER_MSEC 1000000ull

/* The body of a printf-like wrapper (include <stdarg.h>): runs call with the
 * va_list ap started after the argument `last`. */
#define TSG_VA_CALL(last, call)                                                                    \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, last);                                                                \
		call;                                                                              \
		va_end(ap);                                                                        \
	} while (0)

#endif
