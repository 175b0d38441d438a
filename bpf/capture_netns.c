/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the network namespaces the capture scans (capture_priv.h).
 *
 * The tracepoint sees the sockets of every namespace; iter/tcp lists only
 * the namespace of the task that creates the iterator fd. So the capture
 * keeps the set of namespaces that exist (inode -> an open fd of it), found
 * in /proc/PID/ns/net, in the nsfs bind mounts (/run/netns/NAME, a
 * runtime's own directory) and, for a namespace first seen in an event, by
 * looking again. A helper thread enters a namespace (setns(fd,
 * CLONE_NEWNET)), creates the iterator fd there and comes back; the main
 * thread never changes namespace and reads the fd. A namespace that no
 * process and no mount holds any longer is gone: its fd is closed (which
 * lets the kernel free it) and its TIME_WAIT entries end. docs/kernel.md.
 */
#include "capture_priv.h"
#include "log.h"
#include "tsguard.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS_BUCKETS	 256
#define NS_REDISCOVER_NS TSG_NSEC_PER_SEC	/* an unknown inode in an event */
#define NS_DISCOVER_NS	 (5 * TSG_NSEC_PER_SEC) /* periodic: names, gone namespaces */
#define NS_RUN_NETNS	 "/run/netns"

struct cap_ns {
	struct cap_ns *next;
	uint32_t ino;
	int fd;		       /* an open fd of the namespace (-1: ours, entered directly) */
	const char *name;      /* interned name under /run/netns, or NULL */
	const char *last_name; /* the last name it had (for the log when it is gone) */
	uint32_t found;	       /* discovery generation that last found a holder */
};

/* One request to the helper thread: an iterator fd created in ns_fd. */
struct ns_helper {
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, pending, quit;
	int ns_fd, link_fd, self_fd;
	int result; /* the iterator fd, or -errno */
};

struct cap_netns {
	struct cap_ns *b[NS_BUCKETS];
	size_t n;
	uint32_t self_ino;
	uint32_t gen;
	uint64_t last_discover, last_unknown;
	uint64_t overflow, freed;
	bool overflow_logged;
	struct ns_helper h;
};

/* ---- the helper thread ---------------------------------------------------- */

static int helper_create_iter(struct ns_helper *h)
{
	int fd, err;

	if (setns(h->ns_fd, CLONE_NEWNET))
		return -errno;
	fd = bpf_iter_create(h->link_fd);
	err = fd < 0 ? -errno : 0;
	/* back home; should that fail, only this thread is elsewhere, and
	 * every request enters its own namespace first anyway */
	(void)setns(h->self_fd, CLONE_NEWNET);
	return err ? err : fd;
}

static void *helper_main(void *arg)
{
	struct ns_helper *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->pending && !h->quit)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->quit)
			break;
		h->result = helper_create_iter(h);
		h->pending = false;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static int helper_start(struct ns_helper *h)
{
	sigset_t all, old;
	int err;

	h->self_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (h->self_fd < 0)
		return -errno;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	/* signals are the main thread's (SIGHUP, SIGTERM interrupt its poll) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&h->thr, NULL, helper_main, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
		close(h->self_fd);
		h->self_fd = -1;
		return -err;
	}
	h->started = true;
	return 0;
}

static void helper_stop(struct ns_helper *h)
{
	if (!h->started)
		return;
	pthread_mutex_lock(&h->mu);
	h->quit = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thr, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	close(h->self_fd);
	h->started = false;
}

/* An iterator fd of iter_link for namespace ns: ours directly, others on the helper. */
static int ns_iter_fd(struct tsg_capture *c, const struct cap_ns *ns, struct bpf_link *iter_link)
{
	struct ns_helper *h = &c->netns->h;
	int link = bpf_link__fd(iter_link), fd;

	if (ns->fd < 0) {
		fd = bpf_iter_create(link);
		return fd < 0 ? -errno : fd;
	}
	if (!h->started)
		return -ENOTSUP;
	pthread_mutex_lock(&h->mu);
	h->ns_fd = ns->fd;
	h->link_fd = link;
	h->pending = true;
	pthread_cond_broadcast(&h->cv);
	while (h->pending)
		pthread_cond_wait(&h->cv, &h->mu);
	fd = h->result;
	pthread_mutex_unlock(&h->mu);
	return fd;
}

/* ---- the set of namespaces ---------------------------------------------- */

static struct cap_ns **ns_find(struct cap_netns *s, uint32_t ino)
{
	struct cap_ns **pp = &s->b[tsg_hash64(ino) & (NS_BUCKETS - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->ino == ino)
			return pp;
	return pp;
}

/* Namespace `ino` has a holder at `path`: known now, or added with an fd. */
static void ns_found(struct cap_netns *s, uint32_t ino, const char *path)
{
	struct cap_ns **pp = ns_find(s, ino), *ns = *pp;
	int fd;

	if (ns) {
		ns->found = s->gen;
		return;
	}
	if (s->n >= TSG_BPF_NETNS_MAX) {
		s->overflow++;
		log_warn_once(s->overflow_logged,
			      "capture: more than %d network namespaces: the others are not "
			      "scanned (snapshot, TIME_WAIT exits)",
			      TSG_BPF_NETNS_MAX);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* the process ended meanwhile: another holder may be found */
	ns = calloc(1, sizeof(*ns));
	if (!ns) {
		close(fd);
		return;
	}
	ns->ino = ino;
	ns->fd = fd;
	ns->found = s->gen;
	*pp = ns;
	s->n++;
}

static void ns_check_path(struct cap_netns *s, const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		ns_found(s, (uint32_t)st.st_ino, path);
}

static void scan_proc(struct cap_netns *s)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[64];

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(e->d_name, &end, 10);

		if (*end || !pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%lu/ns/net", pid);
		ns_check_path(s, path);
	}
	closedir(d);
}

/* nsfs bind mounts of network namespaces: /run/netns/NAME, runtimes' own. */
static void scan_mounts(struct cap_netns *s)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], root[256], mnt[1024], fstype[64];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "nsfs"))
			continue;
		if (sscanf(line, "%*s %*s %*s %255s %1023s", root, mnt) != 2 ||
		    strncmp(root, "net:[", 5))
			continue;
		ns_check_path(s, mnt);
	}
	fclose(f);
}

/* Names: each entry of /run/netns names the namespace whose inode it has. */
static void scan_names(struct cap_netns *s)
{
	DIR *d = opendir(NS_RUN_NETNS);
	struct dirent *e;
	char path[512];
	struct stat st;

	for (size_t b = 0; b < NS_BUCKETS; b++)
		for (struct cap_ns *ns = s->b[b]; ns; ns = ns->next)
			ns->name = NULL;
	if (!d)
		return;
	while ((e = readdir(d))) {
		struct cap_ns *ns;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), NS_RUN_NETNS "/%s", e->d_name);
		if (stat(path, &st))
			continue;
		ns_found(s, (uint32_t)st.st_ino, path);
		ns = *ns_find(s, (uint32_t)st.st_ino);
		if (ns)
			ns->name = ns->last_name = tsg_intern(e->d_name);
	}
	closedir(d);
}

/* Namespaces not found this time are held only by us: gone. */
static void drop_gone(struct tsg_capture *c)
{
	struct cap_netns *s = c->netns;

	for (size_t b = 0; b < NS_BUCKETS; b++) {
		struct cap_ns **pp = &s->b[b];

		while (*pp) {
			struct cap_ns *ns = *pp;
			size_t tw;

			if (ns->found == s->gen || ns->ino == s->self_ino) {
				pp = &ns->next;
				continue;
			}
			*pp = ns->next;
			s->n--;
			s->freed++;
			tw = cap_tw_forget_netns(c, ns->ino);
			cap_owners_forget_netns(c, ns->ino);
			log_info("capture: network namespace %" PRIu32 "%s%s%s is gone: freed "
				 "(%zu TIME_WAIT sockets ended)",
				 ns->ino, ns->last_name ? " (" : "",
				 ns->last_name ? ns->last_name : "", ns->last_name ? ")" : "", tw);
			close(ns->fd);
			free(ns);
		}
	}
}

void cap_netns_discover(struct tsg_capture *c)
{
	struct cap_netns *s = c->netns;

	if (!s)
		return;
	s->gen++;
	s->last_discover = tsg_mono_ns();
	scan_proc(s);
	scan_mounts(s);
	scan_names(s);
	drop_gone(c);
	cap_netns_allow_refresh(c);
}

void cap_netns_tick(struct tsg_capture *c)
{
	if (c->netns && tsg_mono_ns() - c->netns->last_discover >= NS_DISCOVER_NS)
		cap_netns_discover(c);
}

void cap_netns_event(struct tsg_capture *c, uint32_t ino)
{
	struct cap_netns *s = c->netns;
	uint64_t t;

	if (!s || *ns_find(s, ino))
		return;
	t = tsg_mono_ns();
	if (t - s->last_unknown < NS_REDISCOVER_NS)
		return;
	s->last_unknown = t;
	cap_netns_discover(c);
}

const char *cap_netns_name(const struct tsg_capture *c, uint32_t ino)
{
	struct cap_ns *ns;

	if (!c->netns)
		return NULL;
	ns = *ns_find(c->netns, ino);
	return ns ? ns->name : NULL;
}

bool cap_netns_known(const struct tsg_capture *c, uint32_t ino)
{
	return !c->netns ? ino == cap_netns_self(c) : *ns_find(c->netns, ino) != NULL;
}

uint32_t cap_netns_self(const struct tsg_capture *c)
{
	return c->self_netns;
}

uint32_t cap_netns_lookup_name(const struct tsg_capture *c, const char *name)
{
	if (!c->netns || !name)
		return 0;
	for (size_t b = 0; b < NS_BUCKETS; b++)
		for (struct cap_ns *ns = c->netns->b[b]; ns; ns = ns->next)
			if (ns->name && !strcmp(ns->name, name))
				return ns->ino;
	return 0;
}

uint64_t cap_netns_count(const struct tsg_capture *c)
{
	return c->netns ? c->netns->n : 1;
}

void cap_netns_counts(const struct tsg_capture *c, uint64_t *known, uint64_t *overflow,
		      uint64_t *freed)
{
	*known = cap_netns_count(c);
	*overflow = c->netns ? c->netns->overflow : 0;
	*freed = c->netns ? c->netns->freed : 0;
}

/* ---- iterating ------------------------------------------------------------ */

static int iter_one(struct tsg_capture *c, const struct cap_ns *ns, const struct cap_iter_spec *sp)
{
	int fd, err;

	if (cap_twend_ns_begin(c, ns->ino))
		return 0;
	fd = ns_iter_fd(c, ns, sp->link);
	if (fd == -ENOTSUP)
		return 0; /* no helper (logged at start): ours only */
	if (fd < 0) {
		log_warn("capture: cannot list the TCP sockets of network namespace %" PRIu32
			 ": %s",
			 ns->ino, strerror(-fd));
		return fd;
	}
	if (sp->tail_ok)
		*sp->tail_ok = 0;
	err = cap_iter_read_spec(c, fd, sp);
	close(fd);
	if (!err && sp->tail_ok && *sp->tail_ok) {
		*sp->tail_ok = 0;
		sp->fn(c, sp->tail, sp->arg);
	}
	return err;
}

int cap_netns_iter_spec(struct tsg_capture *c, const uint32_t *only, size_t nonly,
			const struct cap_iter_spec *sp)
{
	struct cap_ns self = {.ino = c->self_netns, .fd = -1};
	struct cap_netns *s = c->netns;
	int err = 0, e;

	if (!s)
		return iter_one(c, &self, sp);
	for (size_t b = 0; b < NS_BUCKETS; b++)
		for (struct cap_ns *ns = s->b[b]; ns; ns = ns->next) {
			bool want = !only;

			for (size_t i = 0; only && i < nonly && !want; i++)
				want = only[i] == ns->ino;
			if (!want)
				continue;
			e = iter_one(c, ns, sp);
			if (e && !err && ns->fd < 0)
				err = e; /* another namespace's failure was logged */
		}
	return err;
}

struct iter_rec_arg {
	cap_iter_fn fn;
	void *arg;
};

static void iter_rec(struct tsg_capture *c, const void *rec, void *arg)
{
	const struct iter_rec_arg *a = arg;
	struct tsg_bpf_iter_rec r;

	memcpy(&r, rec, sizeof(r));
	a->fn(c, &r, a->arg);
}

int cap_netns_iter(struct tsg_capture *c, const uint32_t *only, size_t nonly, bool tw_only,
		   cap_iter_fn fn, void *arg)
{
	struct iter_rec_arg a = {fn, arg};
	struct cap_iter_spec sp = {.link = c->iter_link,
				   .rec_size = sizeof(struct tsg_bpf_iter_rec),
				   .fn = iter_rec,
				   .arg = &a,
				   .ahead = cap_tw_prefetch,
				   .stops = true};

	c->skel->bss->iter_tw_only = tw_only;
	return cap_netns_iter_spec(c, only, nonly, &sp);
}

/* ---- life ------------------------------------------------------------------ */

static void raise_nofile(void)
{
	struct rlimit r;

	/* one fd per namespace held, plus the daemon's own */
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < TSG_BPF_NETNS_MAX + 1024 &&
	    r.rlim_cur < r.rlim_max) {
		r.rlim_cur =
		    r.rlim_max < TSG_BPF_NETNS_MAX + 1024 ? r.rlim_max : TSG_BPF_NETNS_MAX + 1024;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

int cap_netns_init(struct tsg_capture *c)
{
	struct cap_netns *s;
	struct cap_ns *self;
	struct stat st;
	int err;

	if (stat("/proc/self/ns/net", &st))
		return -errno;
	c->self_netns = (uint32_t)st.st_ino;
	c->netns_allowed = calloc(TSG_BPF_NETNS_MAX, sizeof(*c->netns_allowed));
	if (!c->netns_allowed)
		return -ENOMEM;
	if (c->opts.netns_host)
		return 0; /* only ours: no set, no helper */
	s = calloc(1, sizeof(*s));
	self = calloc(1, sizeof(*self));
	if (!s || !self) {
		free(s);
		free(self);
		return -ENOMEM;
	}
	s->self_ino = c->self_netns;
	self->ino = s->self_ino;
	self->fd = -1;
	*ns_find(s, self->ino) = self;
	s->n = 1;
	c->netns = s;
	err = helper_start(&s->h);
	if (err) {
		log_warn("capture: cannot start the namespace helper (%s): only this network "
			 "namespace is scanned",
			 strerror(-err));
		return 0;
	}
	raise_nofile();
	return 0;
}

void cap_netns_free(struct tsg_capture *c)
{
	struct cap_netns *s = c->netns;

	free(c->netns_allowed);
	c->netns_allowed = NULL;
	c->netns_allowed_n = 0;
	if (!s)
		return;
	helper_stop(&s->h);
	for (size_t b = 0; b < NS_BUCKETS; b++)
		for (struct cap_ns *ns = s->b[b], *n; ns; ns = n) {
			n = ns->next;
			if (ns->fd >= 0)
				close(ns->fd);
			free(ns);
		}
	free(s);
	c->netns = NULL;
}
