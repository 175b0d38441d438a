/* SPDX-License-Identifier: MIT */
/*
 * tsguard: owners of sockets (capture_priv.h). The kernel gives an event its
 * owner's pid, comm and cgroup id; the id is turned into a cgroup v2 path
 * here. A socket that predates tsguard has no owner in the kernel: the
 * startup snapshot found it in /proc, and its events get that owner here,
 * as do the sockets accepted by such a listening socket. docs/kernel.md.
 */
#include "capture_priv.h"
#include "container.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#define OWNER_BUCKETS	    4096 /* cgroup cache */
#define CGROUP_CACHE_MAX    65536
#define CGROUP_REWALK_NS    (2 * TSG_NSEC_PER_SEC)
#define SNAPSHOT_OWNERS_MAX 262144
#define LISTENER_OWNERS_MAX 4096

struct cg_entry {
	struct cg_entry *next;
	uint64_t id;
	const char *path;
	/* the container and pod of the path (interned, NULL: none), parsed at
	 * its first use (`ident`), so that an event costs one look-up */
	const char *container, *pod;
	bool ident;
};

/*
 * Owner of a socket that predates tsguard, found by the startup snapshot in
 * /proc. The kernel has no owner for such a socket, so its later events get
 * this one here, until the socket ends. Only the owner's fields are kept
 * (CAP_OWNER_FIELDS: 48 bytes, not a whole struct tsg_sockinfo).
 */
struct snapshot_owner {
	struct snapshot_owner *next;
	uint64_t cookie;
	const char *cgroup; /* interned */
	uint32_t pid;
	uint32_t have;		 /* the CAP_OWNER_FIELDS known */
	char comm[TSG_COMM_LEN]; /* NUL-terminated */
};

#define SNAPSHOT_BUCKETS_MIN 4096

/*
 * A listening socket that predates tsguard, with the owner the snapshot
 * found. The kernel has no owner to copy into the sockets it accepts, so
 * their events get this one: the process whose listening socket accepted
 * them (rules.md), found by namespace, local address and port (the same
 * port in two namespaces is two listeners).
 */
struct listener_owner {
	uint64_t cookie;
	bool any_addr;		  /* 0.0.0.0 or :: (a dual-stack :: also takes IPv4) */
	struct tsg_sockinfo sock; /* netns, laddr, lport and CAP_OWNER_FIELDS */
};

static size_t owner_bucket(uint64_t id)
{
	return (size_t)(tsg_hash64(id) & (OWNER_BUCKETS - 1));
}

void cap_owner_fill(struct tsg_sockinfo *info, const struct tsg_sockinfo *owner)
{
	tsg_sockinfo_copy(info, owner, CAP_OWNER_FIELDS);
}

/* ---- cgroup id -> path ---------------------------------------------------- */

/*
 * The cgroup v2 mount, wherever it is: /sys/fs/cgroup on a unified system,
 * /sys/fs/cgroup/unified on a hybrid one, anywhere else mountinfo says. A
 * mount of the hierarchy's root is preferred over one of a subtree.
 */
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
		if (c->cg_root[0] && strcmp(root, "/"))
			continue; /* have one; only the hierarchy's root is better */
		snprintf(c->cg_root, sizeof(c->cg_root), "%s", mnt);
		snprintf(c->cg_prefix, sizeof(c->cg_prefix), "%s", strcmp(root, "/") ? root : "");
		if (!strcmp(root, "/"))
			break;
	}
	fclose(f);
}

/* Without a cgroup2 line in mountinfo: the two usual places. */
static void cg_probe_root(struct tsg_capture *c)
{
	static const char *const where[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
	struct statfs sf;

	for (size_t i = 0; !c->cg_root[0] && i < sizeof(where) / sizeof(where[0]); i++)
		if (statfs(where[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
			snprintf(c->cg_root, sizeof(c->cg_root), "%s", where[i]);
			c->cg_prefix[0] = 0;
		}
}

static struct tsg_capture *cg_walk_capture; /* nftw has no context pointer */

static void cg_add(struct tsg_capture *c, uint64_t id, const char *path)
{
	size_t b = owner_bucket(id);

	for (struct cg_entry *e = c->cg[b]; e; e = e->next)
		if (e->id == id)
			return;
	if (c->cg_n >= CGROUP_CACHE_MAX)
		return;
	struct cg_entry *e = calloc(1, sizeof(*e));
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

	(void)ftw;
	if (type != FTW_D)
		return 0;
	rel = fpath + strlen(c->cg_root);
	snprintf(path, sizeof(path), "%s%s", c->cg_prefix, *rel ? rel : (*c->cg_prefix ? "" : "/"));
	cg_add(c, (uint64_t)sb->st_ino, path);
	return c->cg_n >= CGROUP_CACHE_MAX ? 1 : 0;
}

/* The entry of cgroup id; an unknown id walks the hierarchy again (at most
 * every CGROUP_REWALK_NS). NULL when still unknown. */
static struct cg_entry *cg_lookup(struct tsg_capture *c, uint64_t id)
{
	uint64_t t;

	if (!id || !c->cg_root[0])
		return NULL;
	for (int tries = 0; tries < 2; tries++) {
		for (struct cg_entry *e = c->cg[owner_bucket(id)]; e; e = e->next)
			if (e->id == id)
				return e;
		t = tsg_mono_ns();
		if (tries || (c->cg_last_walk && t - c->cg_last_walk < CGROUP_REWALK_NS))
			return NULL;
		c->cg_last_walk = t;
		cg_walk_capture = c;
		nftw(c->cg_root, cg_walk_one, 16, FTW_PHYS | FTW_MOUNT);
	}
	return NULL;
}

const char *cap_cgroup_path(struct tsg_capture *c, uint64_t id)
{
	const struct cg_entry *e = cg_lookup(c, id);

	return e ? e->path : NULL;
}

bool cap_cgroup_ident(struct tsg_capture *c, uint64_t id, struct tsg_sockinfo *in)
{
	struct cg_entry *e = cg_lookup(c, id);

	if (!e)
		return false;
	if (!e->ident) {
		struct tsg_sockinfo t = {0};

		if (tsg_sockinfo_set_cgroup(&t, e->path) < 0)
			return true; /* out of memory: in stays as it is (tried again next time) */
		e->container = t.container;
		e->pod = t.pod;
		e->ident = true;
	}
	in->cgroup = e->path;
	in->container = e->container;
	in->pod = e->pod;
	in->have |= TSG_HAVE(TSG_SF_CGROUP) | TSG_HAVE(TSG_SF_CONTAINER) | TSG_HAVE(TSG_SF_POD);
	return true;
}

/* ---- owners of sockets that predate tsguard --------------------------------- */

static struct snapshot_owner **snapshot_owner_find(struct tsg_capture *c, uint64_t cookie)
{
	size_t b = (size_t)(tsg_hash64(cookie) & (c->snapshot_owners_nbuckets - 1));
	struct snapshot_owner **pp = &c->snapshot_owners[b];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->cookie == cookie)
			return pp;
	return pp;
}

/* Chains at least as many as the owners (SNAPSHOT_BUCKETS_MIN first); on
 * failure the old ones stay. */
static int snapshot_owners_grow(struct tsg_capture *c)
{
	size_t on = c->snapshot_owners_nbuckets, n = on ? on * 2 : SNAPSHOT_BUCKETS_MIN;
	struct snapshot_owner **ob = c->snapshot_owners, **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	c->snapshot_owners = nb;
	c->snapshot_owners_nbuckets = n;
	for (size_t b = 0; b < on; b++)
		for (struct snapshot_owner *o = ob[b], *next; o; o = next) {
			struct snapshot_owner **pp = snapshot_owner_find(c, o->cookie);

			next = o->next;
			o->next = NULL;
			*pp = o;
		}
	free(ob);
	return 0;
}

static void snapshot_owner_add(struct tsg_capture *c, uint64_t cookie,
			       const struct tsg_sockinfo *in)
{
	struct snapshot_owner **pp, *o;

	if (!cookie || c->snapshot_owners_n >= SNAPSHOT_OWNERS_MAX)
		return;
	if (c->snapshot_owners_n >= c->snapshot_owners_nbuckets && snapshot_owners_grow(c) < 0 &&
	    !c->snapshot_owners)
		return;
	pp = snapshot_owner_find(c, cookie);
	if (*pp || !(o = calloc(1, sizeof(*o))))
		return;
	o->cookie = cookie;
	o->have = in->have & CAP_OWNER_FIELDS;
	o->pid = in->pid;
	memcpy(o->comm, in->comm, TSG_COMM_LEN);
	o->cgroup = in->cgroup;
	*pp = o;
	c->snapshot_owners_n++;
}

/* Fills the owner of a pre-existing socket; forgets it when the socket ends. */
static void snapshot_owner_apply(struct tsg_capture *c, struct tsg_event *ev)
{
	struct snapshot_owner **pp, *o;

	if (!c->snapshot_owners_n)
		return;
	pp = snapshot_owner_find(c, ev->sk);
	if (!(o = *pp))
		return;
	if (!(ev->info.have & TSG_HAVE(TSG_SF_PID))) {
		struct tsg_sockinfo owner = {.have = o->have, .pid = o->pid, .cgroup = o->cgroup};

		memcpy(owner.comm, o->comm, TSG_COMM_LEN);
		cap_owner_fill(&ev->info, &owner);
	}
	if (ev->to == TSG_CLOSE || ev->to == TSG_TIME_WAIT) {
		*pp = o->next;
		free(o);
		c->snapshot_owners_n--;
	}
}

static bool addr_unspecified(const uint8_t a[16])
{
	static const uint8_t zero[16], v4any[16] = {[10] = 0xff, [11] = 0xff};

	return !memcmp(a, zero, 16) || !memcmp(a, v4any, 16);
}

static void listener_owner_add(struct tsg_capture *c, uint64_t cookie,
			       const struct tsg_sockinfo *in)
{
	struct listener_owner *l, *n;

	if (!(in->have & TSG_HAVE(TSG_SF_PID)) || c->listener_owners_n >= LISTENER_OWNERS_MAX)
		return;
	for (size_t i = 0; i < c->listener_owners_n; i++)
		if (c->listener_owners[i].cookie == cookie)
			return; /* known from an earlier snapshot */
	n = realloc(c->listener_owners, (c->listener_owners_n + 1) * sizeof(*n));
	if (!n)
		return;
	c->listener_owners = n;
	l = &n[c->listener_owners_n++];
	memset(l, 0, sizeof(*l));
	l->cookie = cookie;
	l->any_addr = addr_unspecified(in->laddr);
	tsg_sockinfo_copy(&l->sock, in,
			  TSG_HAVE(TSG_SF_NETNS) | TSG_HAVE(TSG_SF_LADDR) | TSG_HAVE(TSG_SF_LPORT) |
			      CAP_OWNER_FIELDS);
}

/* An ownerless socket accepted by a pre-existing listener gets its owner. */
static void listener_owner_apply(struct tsg_capture *c, struct tsg_event *ev)
{
	/* per event: nothing to do for a socket with an owner, unless it ends */
	if ((ev->info.have & TSG_HAVE(TSG_SF_PID)) && ev->to != TSG_CLOSE)
		return;
	for (size_t i = 0; i < c->listener_owners_n; i++) {
		struct listener_owner *l = &c->listener_owners[i];

		if (l->cookie == ev->sk) {
			/* the listener itself: it ends, and so does what it vouches for */
			if (ev->to == TSG_CLOSE)
				c->listener_owners[i--] =
				    c->listener_owners[--c->listener_owners_n];
			continue;
		}
		if ((ev->info.have & TSG_HAVE(TSG_SF_PID)) ||
		    !(ev->info.have & TSG_HAVE(TSG_SF_LPORT)) || l->sock.lport != ev->info.lport ||
		    l->sock.netns != ev->info.netns ||
		    !(l->any_addr || !memcmp(l->sock.laddr, ev->info.laddr, 16)))
			continue;
		cap_owner_fill(&ev->info, &l->sock);
	}
}

void cap_owners_forget_netns(struct tsg_capture *c, uint32_t netns)
{
	for (size_t i = 0; i < c->listener_owners_n; i++)
		if (c->listener_owners[i].sock.netns == netns)
			c->listener_owners[i--] = c->listener_owners[--c->listener_owners_n];
}

void cap_owners_remember(struct tsg_capture *c, const struct tsg_event *ev)
{
	if (ev->info.have & TSG_HAVE(TSG_SF_PID))
		snapshot_owner_add(c, ev->sk, &ev->info);
	if (ev->to == TSG_LISTEN)
		listener_owner_add(c, ev->sk, &ev->info);
}

void cap_owners_apply(struct tsg_capture *c, struct tsg_event *ev)
{
	snapshot_owner_apply(c, ev);
	if (c->listener_owners_n)
		listener_owner_apply(c, ev);
}

int cap_owners_init(struct tsg_capture *c)
{
	c->cg = calloc(OWNER_BUCKETS, sizeof(*c->cg));
	if (!c->cg)
		return -ENOMEM;
	cg_find_root(c);
	if (!c->cg_root[0])
		cg_probe_root(c);
	return 0;
}

void cap_owners_free(struct tsg_capture *c)
{
	if (c->cg)
		for (size_t b = 0; b < OWNER_BUCKETS; b++)
			for (struct cg_entry *e = c->cg[b], *n; e; e = n) {
				n = e->next;
				free(e);
			}
	free(c->cg);
	c->cg = NULL;
	for (size_t b = 0; c->snapshot_owners && b < c->snapshot_owners_nbuckets; b++) {
		struct snapshot_owner *o = c->snapshot_owners[b], *n;

		for (; o; o = n) {
			n = o->next;
			free(o);
		}
	}
	free(c->snapshot_owners);
	c->snapshot_owners = NULL;
	c->snapshot_owners_n = 0;
	c->snapshot_owners_nbuckets = 0;
	free(c->listener_owners);
	c->listener_owners = NULL;
	c->listener_owners_n = 0;
}
