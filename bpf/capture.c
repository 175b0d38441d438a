/* SPDX-License-Identifier: MIT */
/*
 * tsguard: live capture (capture.h). Loads bpf/tsguard.bpf.c through its
 * skeleton, writes the plan into the filter maps, turns ring buffer records
 * into struct tsg_event, follows TIME_WAIT sockets until they disappear
 * (iter/tcp scan) and synthesises the startup snapshot. docs/kernel.md.
 */
#include "capture.h"
#include "log.h"
#include "tsguard_bpf.h"
#include "tsguard.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct tsg_bpf_event) == 96, "tsg_bpf_event layout");
_Static_assert(sizeof(struct tsg_bpf_iter_rec) == 64, "tsg_bpf_iter_rec layout");
_Static_assert(TSG_BPF_NSTATES == TSG_NSTATES, "state count");
_Static_assert(TSG_BPF_COMM_LEN == TSG_COMM_LEN, "comm length");

/* Wakeup batching (see tsguard.bpf.c wakeup_bytes). */
#define WAKEUP_BYTES (64u << 10)
#define BATCH_MS 10
#define NPORTS 65536u
#define NTRANS (TSG_NSTATES * TSG_NSTATES)
#define CGROUP_CACHE_MAX 65536
#define CGROUP_REWALK_NS (2 * TSG_NSEC_PER_SEC)
#define LOST_LOG_NS TSG_NSEC_PER_SEC

/* What the kernel filter maps hold now (for superset-first updates). */
struct kplan {
	uint64_t trans[NTRANS];
	uint64_t family[2];
	uint64_t *lport, *rport;
	struct tsg_plan_lpm *laddr, *raddr;
	size_t nladdr, nraddr;
	struct tsg_plan_comm *comm;
	size_t ncomm;
	uint64_t comm_default;
	struct tsg_plan_uid *uid;
	size_t nuid;
	uint64_t uid_default;
	bool record_all;
};

/* A socket in TIME_WAIT, followed until its timewait socket disappears. */
struct tw_entry {
	struct tw_entry *next;
	uint8_t laddr[16], raddr[16];
	uint16_t lport, rport;
	uint8_t family;
	uint64_t cookie;   /* the socket id used for its events */
	uint64_t since_ns; /* entered TIME_WAIT */
	uint32_t seen;     /* scan generation that last saw it */
	struct tsg_sockinfo info;
};

/*
 * Owner of a socket that predates tsguard, found by the startup snapshot in
 * /proc. The kernel has no owner for such a socket, so its later events get
 * this one here, until the socket ends.
 */
struct snap_owner {
	struct snap_owner *next;
	uint64_t cookie;
	uint32_t pid;
	char comm[TSG_COMM_LEN];
	const char *cgroup;
};
#define SNAP_OWNER_BUCKETS 4096
#define SNAP_OWNER_MAX 262144

/*
 * A listening socket that predates tsguard, with the owner the snapshot
 * found. The kernel has no owner to copy into the sockets it accepts, so
 * their events get this one: the process whose listening socket accepted
 * them (rules.md), found by local address and port.
 */
struct snap_listener {
	uint64_t cookie;
	uint8_t laddr[16];
	uint16_t lport;
	bool any_addr; /* 0.0.0.0 or :: (a dual-stack :: also takes IPv4) */
	uint32_t pid;
	char comm[TSG_COMM_LEN];
	const char *cgroup;
};
#define SNAP_LISTENERS_MAX 4096

struct cg_entry {
	struct cg_entry *next;
	uint64_t id;
	const char *path;
};

struct tsg_capture {
	struct tsguard_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *iter_link;
	bool fallback; /* classic tracepoint */
	bool verbose;
	struct tsg_capture_opts opts;
	struct kplan cur;

	/* delivery during poll */
	tsg_event_fn cb;
	void *cb_ctx;
	int delivered;

	/* TIME_WAIT follow table */
	struct tw_entry **tw;
	size_t tw_nbuckets, tw_n;
	uint32_t scan_gen;
	uint64_t next_scan_ns;
	uint64_t tw_entered, tw_exited, tw_full;

	/* cgroup id -> v2 path */
	char cg_root[256]; /* cgroup2 mount point, "" if none */
	char cg_prefix[256]; /* the mount's root inside the hierarchy ("" for /) */
	struct cg_entry **cg;
	size_t cg_n;
	uint64_t cg_last_walk;

	uint64_t snapshot_sockets;
	struct snap_owner **sown; /* SNAP_OWNER_BUCKETS, NULL when none */
	size_t sown_n;
	struct snap_listener *slis;
	size_t slis_n;
	uint64_t last_lost;
	uint64_t last_lost_log;
};

/* ---- libbpf logging ------------------------------------------------------ */

static bool libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char buf[16384];
	size_t n;

	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	/* a failed tp_btf attempt is expected on some kernels: debug level */
	tsg_log(LOG_DEBUG, "libbpf: %s", buf);
	return 0;
}

/* ---- privileges, BTF ------------------------------------------------------ */

static bool has_caps_for_bpf(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };
	int bpf = 39, perfmon = 38, sysadmin = CAP_SYS_ADMIN;

	if (syscall(SYS_capget, &h, d))
		return false;
#define HAS(c) (d[(c) / 32].effective & (1u << ((c) % 32)))
	return HAS(sysadmin) || (HAS(bpf) && HAS(perfmon));
#undef HAS
}

static int ensure_tracefs(void)
{
	if (access("/sys/kernel/tracing/events/sock/inet_sock_set_state", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events/sock/inet_sock_set_state", F_OK) == 0)
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL)) {
		int err = -errno;

		log_err("capture: cannot mount tracefs on /sys/kernel/tracing: %s", strerror(-err));
		return err;
	}
	log_info("capture: mounted tracefs on /sys/kernel/tracing (classic tracepoint fallback)");
	return 0;
}

/* ---- plan -> maps ------------------------------------------------------------ */

static void kplan_fini(struct kplan *k)
{
	free(k->lport);
	free(k->rport);
	free(k->laddr);
	free(k->raddr);
	free(k->comm);
	free(k->uid);
	memset(k, 0, sizeof(*k));
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *p = malloc(n ? n * size : 1);

	if (p && n)
		memcpy(p, src, n * size);
	return p;
}

static int kplan_from_plan(struct kplan *k, const struct tsg_plan *p)
{
	memset(k, 0, sizeof(*k));
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			k->trans[f * TSG_NSTATES + t] = p->trans[f][t];
	k->family[0] = p->family[0];
	k->family[1] = p->family[1];
	k->lport = dup_array(p->lport, NPORTS, sizeof(uint64_t));
	k->rport = dup_array(p->rport, NPORTS, sizeof(uint64_t));
	k->laddr = dup_array(p->laddr, p->nladdr, sizeof(*p->laddr));
	k->raddr = dup_array(p->raddr, p->nraddr, sizeof(*p->raddr));
	k->comm = dup_array(p->comm, p->ncomm, sizeof(*p->comm));
	k->uid = dup_array(p->uid, p->nuid, sizeof(*p->uid));
	k->nladdr = p->nladdr;
	k->nraddr = p->nraddr;
	k->ncomm = p->ncomm;
	k->nuid = p->nuid;
	k->comm_default = p->comm_default;
	k->uid_default = p->uid_default;
	k->record_all = p->record_all;
	if (!k->lport || !k->rport || !k->laddr || !k->raddr || !k->comm || !k->uid) {
		kplan_fini(k);
		return -ENOMEM;
	}
	return 0;
}

static bool prefix_contains(const uint8_t *p, unsigned plen, const uint8_t *a, unsigned alen)
{
	unsigned i;

	if (plen > alen)
		return false;
	for (i = 0; i + 8 <= plen; i += 8)
		if (p[i / 8] != a[i / 8])
			return false;
	if (plen % 8) {
		uint8_t m = (uint8_t)(0xff << (8 - plen % 8));

		if ((p[plen / 8] & m) != (a[plen / 8] & m))
			return false;
	}
	return true;
}

/* The value the kernel's LPM trie yields for prefix (a, alen) in set e. */
static uint64_t lpm_of(const struct tsg_plan_lpm *e, size_t n, const uint8_t *a, unsigned alen)
{
	int best = -1;
	uint64_t bits = 0;

	for (size_t i = 0; i < n; i++)
		if ((int)e[i].plen > best && prefix_contains(e[i].addr, e[i].plen, a, alen)) {
			best = e[i].plen;
			bits = e[i].bits;
		}
	return bits;
}

static uint64_t comm_of(const struct kplan *k, const char *c)
{
	for (size_t i = 0; i < k->ncomm; i++)
		if (strncmp(k->comm[i].comm, c, TSG_COMM_LEN) == 0)
			return k->comm[i].bits;
	return k->comm_default;
}

static uint64_t uid_of(const struct kplan *k, uint32_t u)
{
	for (size_t i = 0; i < k->nuid; i++)
		if (k->uid[i].uid == u)
			return k->uid[i].bits;
	return k->uid_default;
}

static int map_put(int fd, const void *key, const void *val, const char *what)
{
	if (bpf_map_update_elem(fd, key, val, BPF_ANY)) {
		int err = -errno;

		log_err("capture: cannot write BPF map %s: %s%s", what, strerror(-err),
			err == -E2BIG || err == -ENOSPC ? " (plan too large for the map)" : "");
		return err;
	}
	return 0;
}

static int array_put_all(int fd, const uint64_t *v, uint32_t n, const char *what)
{
	uint32_t *keys = malloc(n * sizeof(*keys));
	uint32_t count = n;
	int err = 0;

	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		keys[i] = i;
	if (bpf_map_update_batch(fd, keys, v, &count, NULL)) {
		/* older kernels: one by one */
		for (uint32_t i = 0; i < n && !err; i++)
			err = map_put(fd, &keys[i], &v[i], what);
	}
	free(keys);
	return err;
}

/*
 * Writes `w` into the maps. In `union_with` mode (phase 1 of an update) each
 * entry gets old|new so that every intermediate state is a superset of both
 * plans; `old` keys missing from `w` are deleted only in the exact phase.
 */
static int maps_write(struct tsg_capture *c, const struct kplan *w, const struct kplan *old,
		      bool union_with)
{
	struct tsguard_bpf *s = c->skel;
	uint64_t *tmp;
	int err;

	/* trans, family, ports */
	tmp = malloc(NPORTS * sizeof(uint64_t));
	if (!tmp)
		return -ENOMEM;
	for (unsigned i = 0; i < NTRANS; i++)
		tmp[i] = w->trans[i] | (union_with ? old->trans[i] : 0);
	err = array_put_all(bpf_map__fd(s->maps.trans), tmp, NTRANS, "trans");
	for (unsigned i = 0; i < 2 && !err; i++)
		tmp[i] = w->family[i] | (union_with ? old->family[i] : 0);
	if (!err)
		err = array_put_all(bpf_map__fd(s->maps.family), tmp, 2, "family");
	for (unsigned i = 0; i < NPORTS && !err; i++)
		tmp[i] = w->lport[i] | (union_with ? old->lport[i] : 0);
	if (!err)
		err = array_put_all(bpf_map__fd(s->maps.lport), tmp, NPORTS, "lport");
	for (unsigned i = 0; i < NPORTS && !err; i++)
		tmp[i] = w->rport[i] | (union_with ? old->rport[i] : 0);
	if (!err)
		err = array_put_all(bpf_map__fd(s->maps.rport), tmp, NPORTS, "rport");
	free(tmp);
	if (err)
		return err;

	/* LPM tries: value(K) = lpm_old(K) | lpm_new(K) keeps every lookup a superset */
	for (int side = 0; side < 2; side++) {
		int fd = side ? bpf_map__fd(s->maps.raddr) : bpf_map__fd(s->maps.laddr);
		const struct tsg_plan_lpm *we = side ? w->raddr : w->laddr;
		size_t wn = side ? w->nraddr : w->nladdr;
		const struct tsg_plan_lpm *oe = old ? (side ? old->raddr : old->laddr) : NULL;
		size_t on = old ? (side ? old->nraddr : old->nladdr) : 0;
		const char *what = side ? "raddr" : "laddr";

		for (int pass = 0; pass < 2; pass++) {
			const struct tsg_plan_lpm *e = pass ? oe : we;
			size_t n = pass ? on : wn;

			if (pass && !union_with)
				break;
			for (size_t i = 0; i < n; i++) {
				struct tsg_bpf_lpm_key k = { .prefixlen = e[i].plen };
				uint64_t v = lpm_of(we, wn, e[i].addr, e[i].plen);

				if (union_with)
					v |= lpm_of(oe, on, e[i].addr, e[i].plen);
				memcpy(k.addr, e[i].addr, 16);
				err = map_put(fd, &k, &v, what);
				if (err)
					return err;
			}
		}
		if (!union_with && old) {
			for (size_t i = 0; i < on; i++) {
				bool keep = false;

				for (size_t j = 0; j < wn && !keep; j++)
					keep = we[j].plen == oe[i].plen &&
					       prefix_contains(we[j].addr, we[j].plen, oe[i].addr, 128) &&
					       prefix_contains(oe[i].addr, oe[i].plen, we[j].addr, 128);
				if (!keep) {
					struct tsg_bpf_lpm_key k = { .prefixlen = oe[i].plen };

					memcpy(k.addr, oe[i].addr, 16);
					bpf_map_delete_elem(fd, &k);
				}
			}
		}
	}

	/* comm, uid */
	{
		int fd = bpf_map__fd(s->maps.comm);

		for (int pass = 0; pass < 2; pass++) {
			const struct kplan *src = pass ? old : w;

			if (pass && !union_with)
				break;
			for (size_t i = 0; i < src->ncomm; i++) {
				char key[TSG_COMM_LEN] = { 0 };
				uint64_t v;

				memcpy(key, src->comm[i].comm, strnlen(src->comm[i].comm, TSG_COMM_LEN - 1));
				v = comm_of(w, key) | (union_with ? comm_of(old, key) : 0);
				err = map_put(fd, key, &v, "comm");
				if (err)
					return err;
			}
		}
		if (!union_with && old)
			for (size_t i = 0; i < old->ncomm; i++) {
				bool keep = false;

				for (size_t j = 0; j < w->ncomm && !keep; j++)
					keep = strncmp(w->comm[j].comm, old->comm[i].comm, TSG_COMM_LEN) == 0;
				if (!keep) {
					char key[TSG_COMM_LEN] = { 0 };

					memcpy(key, old->comm[i].comm, strnlen(old->comm[i].comm, TSG_COMM_LEN - 1));
					bpf_map_delete_elem(fd, key);
				}
			}
	}
	{
		int fd = bpf_map__fd(s->maps.uid);

		for (int pass = 0; pass < 2; pass++) {
			const struct kplan *src = pass ? old : w;

			if (pass && !union_with)
				break;
			for (size_t i = 0; i < src->nuid; i++) {
				uint32_t key = src->uid[i].uid;
				uint64_t v = uid_of(w, key) | (union_with ? uid_of(old, key) : 0);

				err = map_put(fd, &key, &v, "uid");
				if (err)
					return err;
			}
		}
		if (!union_with && old)
			for (size_t i = 0; i < old->nuid; i++) {
				bool keep = false;

				for (size_t j = 0; j < w->nuid && !keep; j++)
					keep = w->uid[j].uid == old->uid[i].uid;
				if (!keep)
					bpf_map_delete_elem(fd, &old->uid[i].uid);
			}
	}
	s->bss->cfg.comm_default = w->comm_default | (union_with ? old->comm_default : 0);
	s->bss->cfg.uid_default = w->uid_default | (union_with ? old->uid_default : 0);
	s->bss->cfg.record_all = w->record_all || (union_with && old->record_all);
	return 0;
}

static void bump_gen(struct tsg_capture *c)
{
	__atomic_store_n(&c->skel->bss->cfg.gen, c->skel->bss->cfg.gen + 1, __ATOMIC_SEQ_CST);
}

int tsg_capture_update_plan(struct tsg_capture *c, const struct tsg_plan *plan)
{
	struct kplan nk;
	int err;

	if (!c || !plan)
		return -EINVAL;
	err = kplan_from_plan(&nk, plan);
	if (err)
		return err;
	/* phase 1: old|new everywhere, then invalidate cached verdicts */
	err = maps_write(c, &nk, &c->cur, true);
	if (!err) {
		bump_gen(c);
		/* phase 2: exactly new (each step still a superset of new) */
		err = maps_write(c, &nk, &c->cur, false);
	}
	if (err) {
		/* the maps hold a superset of the old plan: still correct for it */
		log_err("capture: kernel filter update failed (%s); keeping a superset filter",
			strerror(-err));
		kplan_fini(&nk);
		return err;
	}
	bump_gen(c);
	kplan_fini(&c->cur);
	c->cur = nk;
	log_debug("capture: kernel filter updated (generation %u)", c->skel->bss->cfg.gen);
	return 0;
}

/* ---- cgroup id -> path -------------------------------------------------------- */

static void cg_find_root(struct tsg_capture *c)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	c->cg_root[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts ... - fstype src opts */
		char root[256], mnt[256], fstype[64];
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %255s %255s", root, mnt) != 2)
			continue;
		snprintf(c->cg_root, sizeof(c->cg_root), "%s", mnt);
		snprintf(c->cg_prefix, sizeof(c->cg_prefix), "%s", strcmp(root, "/") ? root : "");
		break;
	}
	fclose(f);
}

static size_t cg_bucket(uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 52); /* 4096 buckets */
}

static struct tsg_capture *cg_walk_capture; /* nftw has no context pointer */

static void cg_add(struct tsg_capture *c, uint64_t id, const char *path)
{
	size_t b = cg_bucket(id);

	for (struct cg_entry *e = c->cg[b]; e; e = e->next)
		if (e->id == id)
			return;
	if (c->cg_n >= CGROUP_CACHE_MAX)
		return;
	struct cg_entry *e = malloc(sizeof(*e));
	const char *p = tsg_intern(path);

	if (!e || !p) {
		free(e);
		return;
	}
	e->id = id;
	e->path = p;
	e->next = c->cg[b];
	c->cg[b] = e;
	c->cg_n++;
}

static int cg_walk_one(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	struct tsg_capture *c = cg_walk_capture;
	char path[4096];
	const char *rel;

	if (type != FTW_D)
		return 0;
	rel = fpath + strlen(c->cg_root);
	snprintf(path, sizeof(path), "%s%s", c->cg_prefix, *rel ? rel : (*c->cg_prefix ? "" : "/"));
	cg_add(c, (uint64_t)sb->st_ino, path);
	return c->cg_n >= CGROUP_CACHE_MAX ? 1 : 0;
}

static const char *cg_path(struct tsg_capture *c, uint64_t id)
{
	uint64_t t;

	if (!id || !c->cg_root[0])
		return NULL;
	for (int tries = 0; tries < 2; tries++) {
		for (struct cg_entry *e = c->cg[cg_bucket(id)]; e; e = e->next)
			if (e->id == id)
				return e->path;
		t = tsg_mono_ns();
		if (tries || (c->cg_last_walk && t - c->cg_last_walk < CGROUP_REWALK_NS))
			return NULL;
		c->cg_last_walk = t;
		cg_walk_capture = c;
		nftw(c->cg_root, cg_walk_one, 16, FTW_PHYS | FTW_MOUNT);
	}
	return NULL;
}

/* ---- TIME_WAIT follow table ---------------------------------------------------- */

static size_t tw_hash(const struct tsg_capture *c, const uint8_t *la, const uint8_t *ra,
		      uint16_t lp, uint16_t rp)
{
	uint64_t h = 1469598103934665603ull;

	for (int i = 0; i < 16; i++)
		h = (h ^ la[i]) * 1099511628211ull;
	for (int i = 0; i < 16; i++)
		h = (h ^ ra[i]) * 1099511628211ull;
	h = (h ^ lp) * 1099511628211ull;
	h = (h ^ rp) * 1099511628211ull;
	return (size_t)(h & (c->tw_nbuckets - 1));
}

static struct tw_entry **tw_find(struct tsg_capture *c, const uint8_t *la, const uint8_t *ra,
				 uint16_t lp, uint16_t rp)
{
	struct tw_entry **pp = &c->tw[tw_hash(c, la, ra, lp, rp)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->lport == lp && (*pp)->rport == rp && !memcmp((*pp)->laddr, la, 16) &&
		    !memcmp((*pp)->raddr, ra, 16))
			return pp;
	return pp;
}

static void deliver(struct tsg_capture *c, const struct tsg_event *ev)
{
	c->delivered++;
	if (c->cb)
		c->cb(c->cb_ctx, ev);
}

static void tw_exit(struct tsg_capture *c, struct tw_entry *e, uint64_t ts)
{
	struct tsg_event ev = { 0 };

	ev.ts_ns = ts;
	ev.sk = e->cookie;
	ev.from = TSG_TIME_WAIT;
	ev.to = TSG_CLOSE;
	ev.since_ns = e->since_ns;
	ev.info = e->info;
	c->tw_exited++;
	deliver(c, &ev);
}

/* Follows a socket that entered TIME_WAIT (event or snapshot). */
static void tw_enter(struct tsg_capture *c, const struct tsg_event *ev, uint32_t seen)
{
	const struct tsg_sockinfo *in = &ev->info;
	struct tw_entry **pp = tw_find(c, in->laddr, in->raddr, in->lport, in->rport), *e = *pp;

	c->tw_entered++;
	if (e) {
		/* the 4-tuple was reused: the old timewait socket is gone */
		*pp = e->next;
		c->tw_n--;
		tw_exit(c, e, ev->ts_ns);
		free(e);
		pp = tw_find(c, in->laddr, in->raddr, in->lport, in->rport);
	}
	if (c->tw_n >= c->opts.max_sockets || !(e = calloc(1, sizeof(*e)))) {
		c->tw_full++;
		if (c->tw_full == 1 || c->tw_full % 10000 == 0)
			log_warn("capture: TIME_WAIT table full (%u sockets): exits of %" PRIu64
				 " sockets will not be reported",
				 c->opts.max_sockets, c->tw_full);
		return;
	}
	memcpy(e->laddr, in->laddr, 16);
	memcpy(e->raddr, in->raddr, 16);
	e->lport = in->lport;
	e->rport = in->rport;
	e->family = in->family;
	e->cookie = ev->sk;
	e->since_ns = ev->ts_ns;
	e->seen = seen;
	e->info = *in;
	*pp = e;
	c->tw_n++;
}

/* ---- socket iterator ------------------------------------------------------------- */

typedef void (*iter_fn)(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg);

static int run_iter(struct tsg_capture *c, bool tw_only, iter_fn fn, void *arg)
{
	char buf[64 * 1024];
	size_t have = 0;
	ssize_t n;
	int fd;

	c->skel->bss->iter_tw_only = tw_only;
	fd = bpf_iter_create(bpf_link__fd(c->iter_link));
	if (fd < 0) {
		int err = -errno;

		log_err("capture: cannot run the TCP socket iterator: %s", strerror(-err));
		return err;
	}
	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			log_err("capture: TCP socket iterator: %s", strerror(-err));
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		size_t off = 0;

		for (; have - off >= sizeof(struct tsg_bpf_iter_rec);
		     off += sizeof(struct tsg_bpf_iter_rec)) {
			struct tsg_bpf_iter_rec r;

			memcpy(&r, buf + off, sizeof(r));
			fn(c, &r, arg);
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	close(fd);
	return 0;
}

static void scan_mark(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg)
{
	struct tw_entry *e = *tw_find(c, r->laddr, r->raddr, r->lport, r->rport);

	(void)arg;
	if (!r->timewait || !e)
		return;
	if (r->cookie && e->cookie != r->cookie && !(e->cookie >> 62))
		return; /* another socket's timewait on the same 4-tuple */
	e->seen = c->scan_gen;
}

/* TIME_WAIT sockets we follow that no longer exist have left TIME_WAIT. */
static int tw_scan(struct tsg_capture *c)
{
	uint64_t t;
	int err;

	c->scan_gen++;
	err = run_iter(c, true, scan_mark, NULL);
	if (err)
		return err;
	t = tsg_mono_ns();
	for (size_t b = 0; b < c->tw_nbuckets; b++) {
		struct tw_entry **pp = &c->tw[b];

		while (*pp) {
			struct tw_entry *e = *pp;

			if (e->seen == c->scan_gen) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			c->tw_n--;
			tw_exit(c, e, t);
			free(e);
		}
	}
	return 0;
}

/* ---- ring buffer ------------------------------------------------------------------ */

static struct snap_owner **sown_find(struct tsg_capture *c, uint64_t cookie)
{
	struct snap_owner **pp = &c->sown[(cookie * 0x9e3779b97f4a7c15ull) >> 52];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->cookie == cookie)
			return pp;
	return pp;
}

static void sown_add(struct tsg_capture *c, uint64_t cookie, const struct tsg_sockinfo *in)
{
	struct snap_owner **pp, *o;

	if (!cookie || c->sown_n >= SNAP_OWNER_MAX)
		return;
	if (!c->sown && !(c->sown = calloc(SNAP_OWNER_BUCKETS, sizeof(*c->sown))))
		return;
	pp = sown_find(c, cookie);
	if (*pp || !(o = calloc(1, sizeof(*o))))
		return;
	o->cookie = cookie;
	o->pid = in->pid;
	memcpy(o->comm, in->comm, TSG_COMM_LEN);
	o->cgroup = in->have & TSG_HAVE(TSG_SF_CGROUP) ? in->cgroup : NULL;
	*pp = o;
	c->sown_n++;
}

static bool addr_unspecified(const uint8_t a[16])
{
	static const uint8_t zero[16], v4any[16] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(a, zero, 16) || !memcmp(a, v4any, 16);
}

static void slis_add(struct tsg_capture *c, uint64_t cookie, const struct tsg_sockinfo *in)
{
	struct snap_listener *l, *n;

	if (!(in->have & TSG_HAVE(TSG_SF_PID)) || c->slis_n >= SNAP_LISTENERS_MAX)
		return;
	for (size_t i = 0; i < c->slis_n; i++)
		if (c->slis[i].cookie == cookie)
			return; /* known from an earlier snapshot */
	n = realloc(c->slis, (c->slis_n + 1) * sizeof(*n));
	if (!n)
		return;
	c->slis = n;
	l = &n[c->slis_n++];
	memset(l, 0, sizeof(*l));
	l->cookie = cookie;
	memcpy(l->laddr, in->laddr, 16);
	l->lport = in->lport;
	l->any_addr = addr_unspecified(in->laddr);
	l->pid = in->pid;
	memcpy(l->comm, in->comm, TSG_COMM_LEN);
	l->cgroup = in->have & TSG_HAVE(TSG_SF_CGROUP) ? in->cgroup : NULL;
}

/* An ownerless socket accepted by a pre-existing listener gets its owner. */
static void slis_apply(struct tsg_capture *c, struct tsg_event *ev)
{
	/* per event: nothing to do for a socket with an owner, unless it ends */
	if ((ev->info.have & TSG_HAVE(TSG_SF_PID)) && ev->to != TSG_CLOSE)
		return;
	for (size_t i = 0; i < c->slis_n; i++) {
		struct snap_listener *l = &c->slis[i];

		if (l->cookie == ev->sk) {
			/* the listener itself: it ends, and so does what it vouches for */
			if (ev->to == TSG_CLOSE)
				c->slis[i--] = c->slis[--c->slis_n];
			continue;
		}
		if ((ev->info.have & TSG_HAVE(TSG_SF_PID)) || !(ev->info.have & TSG_HAVE(TSG_SF_LPORT)) ||
		    l->lport != ev->info.lport ||
		    !(l->any_addr || !memcmp(l->laddr, ev->info.laddr, 16)))
			continue;
		ev->info.pid = l->pid;
		memcpy(ev->info.comm, l->comm, TSG_COMM_LEN);
		ev->info.have |= TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
		if (l->cgroup) {
			ev->info.cgroup = l->cgroup;
			ev->info.have |= TSG_HAVE(TSG_SF_CGROUP);
		}
	}
}

/* Fills the owner of a pre-existing socket; forgets it when the socket ends. */
static void sown_apply(struct tsg_capture *c, struct tsg_event *ev)
{
	struct snap_owner **pp, *o;

	if (!c->sown_n)
		return;
	pp = sown_find(c, ev->sk);
	if (!(o = *pp))
		return;
	if (!(ev->info.have & TSG_HAVE(TSG_SF_PID))) {
		ev->info.pid = o->pid;
		memcpy(ev->info.comm, o->comm, TSG_COMM_LEN);
		ev->info.have |= TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
		if (o->cgroup) {
			ev->info.cgroup = o->cgroup;
			ev->info.have |= TSG_HAVE(TSG_SF_CGROUP);
		}
	}
	if (ev->to == TSG_CLOSE || ev->to == TSG_TIME_WAIT) {
		*pp = o->next;
		free(o);
		c->sown_n--;
	}
}

static void sown_free(struct tsg_capture *c)
{
	for (size_t b = 0; c->sown && b < SNAP_OWNER_BUCKETS; b++) {
		struct snap_owner *o = c->sown[b], *n;

		for (; o; o = n) {
			n = o->next;
			free(o);
		}
	}
	free(c->sown);
	c->sown = NULL;
	c->sown_n = 0;
}

static void info_from_bpf(struct tsg_capture *c, struct tsg_sockinfo *in,
			  const uint8_t *la, const uint8_t *ra, uint16_t lp, uint16_t rp,
			  uint8_t family)
{
	memset(in, 0, sizeof(*in));
	in->have = TSG_HAVE(TSG_SF_FAMILY) | TSG_HAVE(TSG_SF_LADDR) | TSG_HAVE(TSG_SF_LPORT) |
		   TSG_HAVE(TSG_SF_RADDR) | TSG_HAVE(TSG_SF_RPORT);
	in->family = family;
	memcpy(in->laddr, la, 16);
	memcpy(in->raddr, ra, 16);
	in->lport = lp;
	in->rport = rp;
	/* a connect is reported before its source port is chosen: port 0 is
	 * "not known yet", not a port (the next transition carries it) */
	if (!lp)
		in->have &= ~TSG_HAVE(TSG_SF_LPORT);
	(void)c;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct tsg_capture *c = ctx;
	const struct tsg_bpf_event *e = data;
	struct tsg_event ev = { 0 };

	if (size < sizeof(*e))
		return 0;
	ev.ts_ns = e->ts_ns;
	ev.sk = e->cookie;
	ev.from = e->from < TSG_NSTATES ? e->from : TSG_STATE_NONE;
	ev.to = e->to;
	ev.since_ns = e->since_ns;
	if (ev.to >= TSG_NSTATES)
		return 0;
	info_from_bpf(c, &ev.info, e->laddr, e->raddr, e->lport, e->rport, e->family);
	ev.info.uid = e->uid;
	ev.info.have |= TSG_HAVE(TSG_SF_UID);
	if (e->flags & TSG_BPF_F_OWNER) {
		ev.info.pid = e->pid;
		memcpy(ev.info.comm, e->comm, TSG_COMM_LEN);
		ev.info.comm[TSG_COMM_LEN - 1] = 0;
		ev.info.have |= TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
		ev.info.cgroup = cg_path(c, e->cgroup_id);
		if (ev.info.cgroup)
			ev.info.have |= TSG_HAVE(TSG_SF_CGROUP);
	}
	sown_apply(c, &ev);
	if (c->slis_n)
		slis_apply(c, &ev);
	deliver(c, &ev);
	if (ev.to == TSG_TIME_WAIT)
		tw_enter(c, &ev, c->scan_gen);
	return 0;
}

static void read_counters(const struct tsg_capture *c, uint64_t out[TSG_BPF_C_N])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	memset(out, 0, sizeof(uint64_t) * TSG_BPF_C_N);
	if (ncpu <= 0 || !(v = calloc((size_t)ncpu, sizeof(uint64_t))))
		return;
	for (uint32_t i = 0; i < TSG_BPF_C_N; i++) {
		if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.counters), &i, v))
			continue;
		for (int cpu = 0; cpu < ncpu; cpu++)
			out[i] += v[cpu];
	}
	free(v);
}

static void check_lost(struct tsg_capture *c)
{
	uint64_t cnt[TSG_BPF_C_N], t = tsg_mono_ns();

	if (t - c->last_lost_log < LOST_LOG_NS)
		return;
	c->last_lost_log = t;
	read_counters(c, cnt);
	if (cnt[TSG_BPF_C_LOST] > c->last_lost) {
		log_warn("capture: ring buffer full: %" PRIu64 " events lost (%" PRIu64
			 " in total); states of the sockets concerned may be stale",
			 cnt[TSG_BPF_C_LOST] - c->last_lost, cnt[TSG_BPF_C_LOST]);
		c->last_lost = cnt[TSG_BPF_C_LOST];
	}
}

int tsg_capture_timeout(const struct tsg_capture *c, int timeout_ms)
{
	if (c->tw_n) {
		uint64_t t = tsg_mono_ns();
		int left = t >= c->next_scan_ns ? 0 : (int)((c->next_scan_ns - t) / TSG_NSEC_PER_MSEC) + 1;

		if (timeout_ms < 0 || left < timeout_ms)
			timeout_ms = left;
	}
	if (c->skel->rodata->wakeup_bytes && (timeout_ms < 0 || timeout_ms > BATCH_MS))
		timeout_ms = BATCH_MS;
	return timeout_ms;
}

int tsg_capture_fd(const struct tsg_capture *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int tsg_capture_poll(struct tsg_capture *c, int timeout_ms, tsg_event_fn cb, void *ctx)
{
	int err;

	if (!c)
		return -EINVAL;
	c->cb = cb;
	c->cb_ctx = ctx;
	c->delivered = 0;
	timeout_ms = tsg_capture_timeout(c, timeout_ms);
	err = ring_buffer__poll(c->rb, timeout_ms);
	if (err < 0 && err != -EINTR) {
		log_err("capture: ring buffer poll: %s", strerror(-err));
		return err;
	}
	/* events submitted without a wakeup do not make epoll ready: read them */
	ring_buffer__consume(c->rb);
	if (c->tw_n && tsg_mono_ns() >= c->next_scan_ns) {
		/* drain first: an entry delivered now is in the iterator's view */
		ring_buffer__consume(c->rb);
		tw_scan(c);
		c->next_scan_ns = tsg_mono_ns() + (uint64_t)c->opts.tw_scan_ms * TSG_NSEC_PER_MSEC;
	}
	check_lost(c);
	c->cb = NULL;
	if (err == -EINTR && !c->delivered)
		return -EINTR;
	return c->delivered;
}

/* ---- snapshot ---------------------------------------------------------------------- */

struct snap_sock {
	struct tsg_bpf_iter_rec r;
	uint32_t pid;
};

struct snap {
	struct snap_sock *v;
	size_t n, cap;
	bool oom;
};

static void snap_collect(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg)
{
	struct snap *s = arg;

	(void)c;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		struct snap_sock *nv = realloc(s->v, ncap * sizeof(*nv));

		if (!nv) {
			s->oom = true;
			return;
		}
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n].r = *r;
	s->v[s->n].pid = 0;
	s->n++;
}

static int cmp_ino(const void *a, const void *b)
{
	uint64_t x = ((const struct snap_sock *)a)->r.ino, y = ((const struct snap_sock *)b)->r.ino;

	return x < y ? -1 : x > y;
}

/* Socket inode -> the lowest pid holding it (/proc/PID/fd/N -> "socket:[INO]"). */
static void snap_find_owners(struct snap *s)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;

	if (!proc)
		return;
	if (!s->n) {
		closedir(proc);
		return;
	}
	qsort(s->v, s->n, sizeof(*s->v), cmp_ino);
	while ((d = readdir(proc))) {
		char path[64], link[64];
		char fp[320];
		DIR *fds;
		struct dirent *f;
		char *end;
		unsigned long pid = strtoul(d->d_name, &end, 10);

		if (*end || !pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%lu/fd", pid);
		if (!(fds = opendir(path)))
			continue;
		while ((f = readdir(fds))) {
			ssize_t n;
			unsigned long long ino;

			if (f->d_name[0] == '.')
				continue;
			snprintf(fp, sizeof(fp), "%s/%s", path, f->d_name);
			n = readlink(fp, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (sscanf(link, "socket:[%llu]", &ino) != 1)
				continue;
			/* binary search the sorted inodes */
			size_t lo = 0, hi = s->n;

			while (lo < hi) {
				size_t mid = (lo + hi) / 2;

				if (s->v[mid].r.ino < ino)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < s->n && s->v[lo].r.ino == ino; lo++)
				if (!s->v[lo].pid || pid < s->v[lo].pid)
					s->v[lo].pid = (uint32_t)pid;
		}
		closedir(fds);
	}
	closedir(proc);
}

static bool read_comm(uint32_t pid, char out[TSG_COMM_LEN])
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	if (!(f = fopen(path, "re")))
		return false;
	n = fread(out, 1, TSG_COMM_LEN - 1, f);
	fclose(f);
	out[n] = 0;
	if (n && out[n - 1] == '\n')
		out[n - 1] = 0;
	return n > 0;
}

static const char *read_cgroup(uint32_t pid)
{
	char path[64], line[4096];
	const char *res = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	if (!(f = fopen(path, "re")))
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			res = tsg_intern(line + 3);
			break;
		}
	}
	fclose(f);
	return res;
}

static uint64_t tuple_id(const struct tsg_bpf_iter_rec *r)
{
	uint64_t h = 1469598103934665603ull;
	const uint8_t *p = (const uint8_t *)r;

	/* laddr, raddr, ports: bytes 20..56 of the record */
	for (size_t i = offsetof(struct tsg_bpf_iter_rec, laddr);
	     i < offsetof(struct tsg_bpf_iter_rec, family); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (h >> 2) | (1ull << 62); /* bit 62: synthesised id, not a cookie */
}

int tsg_capture_snapshot(struct tsg_capture *c, tsg_event_fn cb, void *ctx)
{
	struct snap s = { 0 };
	uint64_t t = tsg_mono_ns();
	int err;

	if (!c)
		return -EINVAL;
	err = run_iter(c, false, snap_collect, &s);
	if (!err && s.oom)
		err = -ENOMEM;
	if (err) {
		free(s.v);
		return err;
	}
	snap_find_owners(&s);
	c->cb = cb;
	c->cb_ctx = ctx;
	for (size_t i = 0; i < s.n; i++) {
		const struct tsg_bpf_iter_rec *r = &s.v[i].r;
		struct tsg_event ev = { 0 };

		if (r->state == 0 || r->state >= TSG_NSTATES)
			continue;
		ev.ts_ns = t;
		ev.since_ns = t;
		ev.snapshot = 1;
		ev.from = TSG_STATE_NONE;
		ev.to = r->state;
		ev.sk = r->cookie ? r->cookie : tuple_id(r);
		info_from_bpf(c, &ev.info, r->laddr, r->raddr, r->lport, r->rport, r->family);
		if (!r->timewait) {
			ev.info.uid = r->uid;
			ev.info.have |= TSG_HAVE(TSG_SF_UID);
		}
		if (s.v[i].pid && read_comm(s.v[i].pid, ev.info.comm)) {
			ev.info.pid = s.v[i].pid;
			ev.info.have |= TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
			ev.info.cgroup = read_cgroup(s.v[i].pid);
			if (ev.info.cgroup)
				ev.info.have |= TSG_HAVE(TSG_SF_CGROUP);
		}
		c->snapshot_sockets++;
		if (!r->timewait && (ev.info.have & TSG_HAVE(TSG_SF_PID)))
			sown_add(c, ev.sk, &ev.info);
		if (ev.to == TSG_LISTEN)
			slis_add(c, ev.sk, &ev.info);
		if (r->timewait) {
			/* a snapshot taken again (reload) finds timewait sockets it
			 * follows already: deliver, but keep following the same entry */
			struct tw_entry *known =
				*tw_find(c, ev.info.laddr, ev.info.raddr, ev.info.lport, ev.info.rport);

			if (known && known->cookie == ev.sk) {
				ev.info = known->info;
				deliver(c, &ev);
				continue;
			}
		}
		deliver(c, &ev);
		if (r->timewait)
			tw_enter(c, &ev, c->scan_gen);
	}
	c->cb = NULL;
	c->next_scan_ns = tsg_mono_ns() + (uint64_t)c->opts.tw_scan_ms * TSG_NSEC_PER_MSEC;
	log_debug("capture: snapshot: %zu TCP sockets", s.n);
	free(s.v);
	return 0;
}

/* ---- load / attach ------------------------------------------------------------------ */

static uint32_t pow2_at_least(uint32_t v, uint32_t min)
{
	uint32_t p = min;

	while (p < v && p < (1u << 30))
		p <<= 1;
	return p;
}

static int load(struct tsg_capture *c, bool classic, struct tsguard_bpf **out)
{
	struct tsguard_bpf *s;
	struct stat st;
	int err;

	s = tsguard_bpf__open();
	if (!s) {
		err = -errno;
		log_err("capture: cannot open the BPF object: %s", strerror(-err));
		return err ? err : -EINVAL;
	}
	if (stat("/proc/self/ns/net", &st) == 0)
		s->rodata->netns_ino = (uint32_t)st.st_ino;
	/* batch wakeups: the reader is woken when WAKEUP_BYTES wait, and polls
	 * every BATCH_MS anyway (TSG_CAPTURE_WAKEUP_EVERY=1: wake on each event) */
	if (!getenv("TSG_CAPTURE_WAKEUP_EVERY"))
		s->rodata->wakeup_bytes = WAKEUP_BYTES;
	bpf_map__set_max_entries(s->maps.events, pow2_at_least(c->opts.ringbuf_bytes, 4096));
	bpf_program__set_autoload(s->progs.tsg_set_state_btf, !classic);
	bpf_program__set_autoload(s->progs.tsg_set_state_btf2, !classic);
	bpf_program__set_autoload(s->progs.tsg_send_reset_btf, !classic);
	bpf_program__set_autoload(s->progs.tsg_set_state_tp, classic);
	bpf_program__set_autoload(s->progs.tsg_send_reset_tp, classic);
	bpf_map__set_max_entries(s->maps.fb_socks, classic ? c->opts.max_sockets : 1);
	if (!classic)
		bpf_map__set_max_entries(s->maps.fb_listen, 1);
	err = tsguard_bpf__load(s);
	if (err)
		goto fail;
	if (classic) {
		err = ensure_tracefs();
		if (err)
			goto fail;
		s->links.tsg_set_state_tp = bpf_program__attach(s->progs.tsg_set_state_tp);
		if (!s->links.tsg_set_state_tp) {
			err = -errno;
			goto fail;
		}
		s->links.tsg_send_reset_tp = bpf_program__attach(s->progs.tsg_send_reset_tp);
		if (!s->links.tsg_send_reset_tp)
			log_warn("capture: tcp:tcp_send_reset not attached (%s): a reset FIN_WAIT2 "
				 "socket may be reported as TIME_WAIT", strerror(errno));
	} else {
		s->links.tsg_set_state_btf = bpf_program__attach(s->progs.tsg_set_state_btf);
		if (!s->links.tsg_set_state_btf) {
			err = -errno;
			goto fail;
		}
		/* the second copy catches what the first misses while nested */
		s->links.tsg_set_state_btf2 = bpf_program__attach(s->progs.tsg_set_state_btf2);
		if (!s->links.tsg_set_state_btf2) {
			err = -errno;
			goto fail;
		}
		s->links.tsg_send_reset_btf = bpf_program__attach(s->progs.tsg_send_reset_btf);
		if (!s->links.tsg_send_reset_btf)
			log_warn("capture: tp_btf/tcp_send_reset not attached (%s): a reset FIN_WAIT2 "
				 "socket may be reported as TIME_WAIT", strerror(errno));
	}
	*out = s;
	return 0;
fail:
	tsguard_bpf__destroy(s);
	return err ? err : -EINVAL;
}

int tsg_capture_new(const struct tsg_plan *plan, const struct tsg_capture_opts *opts,
		    struct tsg_capture **out)
{
	struct tsg_capture *c;
	const char *force;
	int err;

	if (!plan || !out)
		return -EINVAL;
	if (geteuid() != 0 && !has_caps_for_bpf()) {
		log_err("capture: loading BPF needs root or CAP_BPF and CAP_PERFMON "
			"(or --replay FILE, which needs no privileges)");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		log_err("capture: this kernel has no BTF (/sys/kernel/btf/vmlinux): "
			"CONFIG_DEBUG_INFO_BTF is needed for the BPF capture");
		return -EOPNOTSUPP;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (opts)
		c->opts = *opts;
	if (!c->opts.ringbuf_bytes)
		c->opts.ringbuf_bytes = 8u << 20;
	if (!c->opts.max_sockets)
		c->opts.max_sockets = 262144;
	if (!c->opts.tw_scan_ms)
		c->opts.tw_scan_ms = 1000;
	c->verbose = c->opts.verbose;
	libbpf_verbose = c->verbose;
	libbpf_set_print(libbpf_print);

	c->tw_nbuckets = pow2_at_least(c->opts.max_sockets / 2, 1024);
	c->tw = calloc(c->tw_nbuckets, sizeof(*c->tw));
	c->cg = calloc(4096, sizeof(*c->cg));
	if (!c->tw || !c->cg) {
		err = -ENOMEM;
		goto fail;
	}
	cg_find_root(c);

	force = getenv("TSG_CAPTURE_FORCE_CLASSIC");
	if (force && *force && strcmp(force, "0")) {
		err = -EOPNOTSUPP;
	} else {
		err = load(c, false, &c->skel);
		if (err)
			log_info("capture: tp_btf/inet_sock_set_state unavailable (%s); "
				 "using the classic tracepoint", strerror(-err));
	}
	if (err) {
		err = load(c, true, &c->skel);
		if (err) {
			log_err("capture: cannot load/attach the BPF programs: %s%s", strerror(-err),
				c->verbose ? "" : " (-v shows the libbpf log)");
			if (err == -EPERM || err == -EACCES)
				err = -EPERM;
			else if (err != -ENOMEM)
				err = -EOPNOTSUPP;
			goto fail;
		}
		c->fallback = true;
	}
	err = kplan_from_plan(&c->cur, plan);
	if (err)
		goto fail;
	err = maps_write(c, &c->cur, NULL, false);
	if (err)
		goto fail;
	bump_gen(c); /* gen 1: cached verdicts (gen 0) are stale */

	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_event, c, NULL);
	if (!c->rb) {
		err = -errno;
		log_err("capture: cannot set up the ring buffer: %s", strerror(-err));
		goto fail;
	}
	c->iter_link = bpf_program__attach_iter(c->skel->progs.tsg_iter_tcp, NULL);
	if (!c->iter_link) {
		err = -errno;
		log_err("capture: cannot attach the TCP socket iterator: %s", strerror(-err));
		err = -EOPNOTSUPP;
		goto fail;
	}
	c->next_scan_ns = tsg_mono_ns() + (uint64_t)c->opts.tw_scan_ms * TSG_NSEC_PER_MSEC;
	log_info("capture: attached (%s), ring buffer %u KiB",
		 c->fallback ? "classic tracepoint sock:inet_sock_set_state"
			     : "tp_btf/inet_sock_set_state",
		 bpf_map__max_entries(c->skel->maps.events) / 1024);
	*out = c;
	return 0;
fail:
	tsg_capture_free(c);
	return err;
}

void tsg_capture_get_stats(const struct tsg_capture *c, struct tsg_capture_stats *st)
{
	uint64_t cnt[TSG_BPF_C_N];

	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	read_counters(c, cnt);
	st->seen = cnt[TSG_BPF_C_SEEN];
	st->filtered = cnt[TSG_BPF_C_FILTERED];
	st->sent = cnt[TSG_BPF_C_SENT];
	st->lost = cnt[TSG_BPF_C_LOST];
	st->map_full = cnt[TSG_BPF_C_MAP_FULL] + c->tw_full;
	st->tw_entered = c->tw_entered;
	st->tw_exited = c->tw_exited;
	st->snapshot_sockets = c->snapshot_sockets;
	if (c->verbose)
		log_debug("capture: %" PRIu64 " transitions handled by the nested-run copy, %" PRIu64
			  " of other network namespaces ignored",
			  cnt[TSG_BPF_C_NESTED], cnt[TSG_BPF_C_OTHER_NS]);
}

void tsg_capture_free(struct tsg_capture *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	bpf_link__destroy(c->iter_link);
	tsguard_bpf__destroy(c->skel);
	kplan_fini(&c->cur);
	if (c->tw)
		for (size_t b = 0; b < c->tw_nbuckets; b++)
			for (struct tw_entry *e = c->tw[b], *n; e; e = n) {
				n = e->next;
				free(e);
			}
	free(c->tw);
	if (c->cg)
		for (size_t b = 0; b < 4096; b++)
			for (struct cg_entry *e = c->cg[b], *n; e; e = n) {
				n = e->next;
				free(e);
			}
	free(c->cg);
	sown_free(c);
	free(c->slis);
	free(c);
}
