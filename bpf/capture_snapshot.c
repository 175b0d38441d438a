/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the snapshot (tsg_capture_snapshot, capture.h). iter/tcp lists
 * the TCP sockets that exist now, one pass in each network namespace
 * (capture_netns.c); /proc/PID/fd finds their owners (the lowest pid
 * holding each socket inode; inodes are unique across namespaces); each
 * socket is delivered as an
 * event from TSG_STATE_NONE, its owner remembered for its later events, and
 * a timewait or request socket followed until it disappears. The resync
 * (capture_reconcile.c) delivers the sockets it finds missing the same way.
 * docs/kernel.md.
 */
#include "capture_priv.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cap_snap_collect(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg)
{
	struct cap_snap *s = arg;

	(void)c;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		struct cap_snap_sock *nv = realloc(s->v, ncap * sizeof(*nv));

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
	uint64_t x = ((const struct cap_snap_sock *)a)->r.ino,
		 y = ((const struct cap_snap_sock *)b)->r.ino;

	return x < y ? -1 : x > y;
}

/* The sockets (sorted by inode) with inode `ino` are held by pid. */
static void snap_held_by(struct cap_snap *s, unsigned long long ino, unsigned long pid)
{
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

/* /proc/PID/fd/N -> "socket:[INO]". */
static void snap_scan_fds(struct cap_snap *s, unsigned long pid)
{
	char path[64], link[64], fp[320];
	struct dirent *f;
	DIR *fds;

	snprintf(path, sizeof(path), "/proc/%lu/fd", pid);
	if (!(fds = opendir(path)))
		return;
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
		if (sscanf(link, "socket:[%llu]", &ino) == 1)
			snap_held_by(s, ino, pid);
	}
	closedir(fds);
}

/* Socket inode -> the lowest pid holding it. */
static void snap_find_owners(struct cap_snap *s)
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
		char *end;
		unsigned long pid = strtoul(d->d_name, &end, 10);

		if (!*end && pid)
			snap_scan_fds(s, pid);
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

/* The id of a socket without a cookie: a timewait socket that inherited
 * none, a request socket (bit 62: synthesised, not a cookie; the two kinds
 * hash apart). */
uint64_t cap_rec_id(const struct tsg_bpf_iter_rec *r)
{
	uint64_t h = cap_tuple_hash(r->netns, r->laddr, r->raddr, r->lport, r->rport);

	if (r->kind == TSG_BPF_ITER_FULL || (r->kind == TSG_BPF_ITER_TIMEWAIT && r->cookie))
		return r->cookie;
	if (r->kind == TSG_BPF_ITER_REQUEST)
		h = tsg_hash64(h ^ TSG_NEW_SYN_RECV);
	return (h >> 2) | (1ull << 62);
}

void cap_rec_event(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, uint64_t t,
		   struct tsg_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->ts_ns = t;
	ev->since_ns = t;
	ev->from = TSG_STATE_NONE;
	ev->to = r->state;
	ev->sk = cap_rec_id(r);
	cap_info_from_bpf(&ev->info, r->laddr, r->raddr, r->lport, r->rport, r->family);
	cap_info_netns(c, &ev->info, r->netns);
	if (r->kind == TSG_BPF_ITER_FULL) {
		ev->info.uid = r->uid;
		ev->info.have |= TSG_HAVE(TSG_SF_UID);
	} else if (r->kind == TSG_BPF_ITER_REQUEST) {
		/* the owner the snapshot found for a listener that predates tsguard */
		cap_owners_apply(c, ev);
	}
	cap_info_cgroup(c, &ev->info, r->sk_cgroup);
}

/* The owner of pid, from /proc. */
static void snap_owner_of(uint32_t pid, struct tsg_sockinfo *info)
{
	struct tsg_sockinfo o = {0};

	if (!pid || !read_comm(pid, o.comm))
		return;
	o.pid = pid;
	o.have = TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
	o.cgroup = read_cgroup(pid);
	if (o.cgroup)
		o.have |= TSG_HAVE(TSG_SF_CGROUP);
	cap_owner_fill(info, &o);
}

static void snap_deliver(struct tsg_capture *c, const struct cap_snap_sock *ss, uint64_t t)
{
	const struct tsg_bpf_iter_rec *r = &ss->r;
	const struct tsg_sockinfo *known;
	struct tsg_event ev;

	if (r->state == 0 || r->state >= TSG_NSTATES)
		return;
	cap_rec_event(c, r, t, &ev);
	ev.snapshot = 1;
	snap_owner_of(ss->pid, &ev.info);
	cap_info_cgroup(c, &ev.info, r->sk_cgroup); /* its own cgroup wins over its owner's */
	c->snapshot_sockets++;
	if (r->kind == TSG_BPF_ITER_FULL) {
		cap_owners_remember(c, &ev);
	} else if ((known = cap_tw_followed(c, &ev))) {
		/* a snapshot taken again (reload) finds timewait and request
		 * sockets it follows already: deliver, keep following the entry */
		ev.info = *known;
		cap_deliver(c, &ev);
		return;
	}
	cap_deliver(c, &ev);
	if (r->kind == TSG_BPF_ITER_TIMEWAIT)
		cap_tw_enter(c, &ev);
	else if (r->kind == TSG_BPF_ITER_REQUEST && cap_plan_wants(c, TSG_NEW_SYN_RECV))
		cap_req_enter(c, &ev);
}

void cap_snap_deliver(struct tsg_capture *c, struct cap_snap *s, uint64_t t)
{
	snap_find_owners(s);
	for (size_t i = 0; i < s->n; i++)
		snap_deliver(c, &s->v[i], t);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

int tsg_capture_snapshot(struct tsg_capture *c, tsg_event_fn cb, void *ctx)
{
	struct cap_snap s = {0};
	uint64_t t = tsg_mono_ns();
	size_t n;
	int err;

	if (!c)
		return -EINVAL;
	/* every namespace that exists now (--netns host: ours) */
	cap_netns_discover(c);
	err = cap_netns_iter(c, NULL, 0, false, cap_snap_collect, &s);
	if (!err && s.oom)
		err = -ENOMEM;
	if (err) {
		free(s.v);
		return err;
	}
	n = s.n;
	c->cb = cb;
	c->cb_ctx = ctx;
	cap_snap_deliver(c, &s, t);
	c->cb = NULL;
	cap_rc_schedule(c);
	log_debug("capture: snapshot: %zu TCP sockets in %" PRIu64 " network namespaces, %.1f ms",
		  n, cap_netns_count(c), (double)(tsg_mono_ns() - t) / 1e6);
	return 0;
}
