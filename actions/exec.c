/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the exec action. One supervisor thread forks and watches every
 * hook: argv is executed directly (never through a shell), the alert goes in
 * as environment variables and as JSON on standard input, stdout and stderr
 * are captured (bounded) to the log, a hook that overstays its timeout gets
 * SIGTERM and, after a grace, SIGKILL (its whole process group), and every
 * child is reaped by its pid (never waitpid(-1): other children of tsguard
 * are not ours). Per action at most max_concurrent hooks run; more wait in a
 * bounded queue, and what does not fit is counted as dropped.
 */
#include "action_impl.h"

#include <inttypes.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define EX_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define EX_OUT_MAX 4096        /* bytes of stdout and of stderr kept per hook */
#define EX_MAX_CHILDREN 256    /* all actions together */
#define EX_MAX_CONCURRENT 64   /* per action */
#define EX_MAX_SLOTS 4096      /* distinct action names */
#define EX_MAX_GROUPS 256
#define EX_DEFAULT_TIMEOUT (30 * TSG_NSEC_PER_SEC)

struct ex_job {
	struct tsg_act_link link; /* first: queued in a tsg_act_fifo */
	struct tsg_act_job h;
	char **argv, **envp; /* NULL-terminated */
	char *input;         /* the alert JSON + "\n" */
	size_t input_len;
	char *user;
	uint64_t timeout_ns;
	int max_concurrent;
};

struct ex_slot { /* one per action name: its queue and how many run */
	char *name;
	struct tsg_act_fifo q;
	int running;
	struct ex_slot *next;
};

struct ex_stream {
	int fd;
	const char *what; /* "stdout", "stderr" */
	char buf[EX_OUT_MAX];
	size_t len;
	bool truncated;
};

struct ex_child {
	struct ex_job *job;
	struct ex_slot *slot;
	pid_t pid;
	int pidfd;
	int in_fd;
	size_t in_off;
	struct ex_stream out, err;
	uint64_t deadline, kill_at;
	int phase; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
};

struct tsg_exec_runner {
	/* first; its lock: slots (queues, running) and stop; its cap: per action */
	struct tsg_act_runner base;
	int wake_fd; /* eventfd */
	struct ex_slot *slots;
	size_t nslots;
	/* supervisor thread only */
	struct ex_child *kids[EX_MAX_CHILDREN];
	size_t nkids;
	bool stopping;
	uint64_t stop_deadline;
};

/* ---- building a job --------------------------------------------------- */

static void job_free(struct ex_job *j)
{
	if (!j)
		return;
	tsg_act_job_fini(&j->h);
	tsg_act_free_vec(j->argv);
	tsg_act_free_vec(j->envp);
	free(j->input);
	free(j->user);
	free(j);
}

static char *env_pair(const char *prefix, const char *name, const char *value)
{
	size_t lp = strlen(prefix), ln = strlen(name), lv = strlen(value);
	char *s = malloc(lp + ln + lv + 2);

	if (!s)
		return NULL;
	memcpy(s, prefix, lp);
	for (size_t i = 0; i < ln; i++) {
		unsigned char ch = (unsigned char)name[i];
		s[lp + i] = isalnum(ch) ? (char)toupper(ch) : '_';
	}
	s[lp + ln] = '=';
	memcpy(s + lp + ln + 1, value, lv + 1);
	return s;
}

/* PATH, TSG_<FIELD> for every template field the alert has, TSG_LABEL_<NAME>. */
static char **ex_env(const struct tsg_alert *a)
{
	size_t cap = 2 + TSG_TF_N + a->rule->nlabels, n = 0;
	char **v = calloc(cap, sizeof(*v));
	char buf[4096];

	if (!v)
		return NULL;
	if (!(v[n++] = strdup("PATH=" EX_PATH)))
		goto fail;
	for (int f = 0; f < TSG_TF_N; f++) {
		if (f == TSG_TF_LABEL || tsg_alert_field(a, f, NULL, buf, sizeof(buf)) < 0)
			continue;
		if (!(v[n++] = env_pair("TSG_", tsg_tfield_name(f), buf)))
			goto fail;
	}
	for (size_t i = 0; i < a->rule->nlabels; i++)
		if (!(v[n++] = env_pair("TSG_LABEL_", a->rule->labels[i].name,
					a->rule->labels[i].value)))
			goto fail;
	return v;
fail:
	tsg_act_free_vec(v);
	return NULL;
}

static char **ex_argv(const struct tsg_action_def *d, const struct tsg_alert *a)
{
	char **v = calloc(d->exec.argc + 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < d->exec.argc; i++)
		if (!(v[i] = tsg_act_render(&d->exec.argv[i], a))) {
			tsg_act_free_vec(v);
			return NULL;
		}
	return v;
}

static uint64_t ex_timeout(const struct tsg_action_def *d)
{
	return d->exec.timeout_ns ? d->exec.timeout_ns : EX_DEFAULT_TIMEOUT;
}

static int ex_max_concurrent(const struct tsg_action_def *d)
{
	int m = d->exec.max_concurrent > 0 ? d->exec.max_concurrent : 4;

	return m > EX_MAX_CONCURRENT ? EX_MAX_CONCURRENT : m;
}

void tsg_exec_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d)
{
	char **argv = ex_argv(d, c->a), **envp = ex_env(c->a);
	char *qa = tsg_act_quote_vec(argv), *qe = tsg_act_quote_vec(envp);
	char *qu = d->exec.user ? tsg_act_quote(d->exec.user) : NULL;
	char dur[32];

	char line[256];

	tsg_act_dry(c, d, "argv", qa, true);
	tsg_act_dry(c, d, "env", qe, true);
	tsg_act_dry(c, d, "stdin", tsg_act_ctx_json(c), true);
	snprintf(line, sizeof(line), "%s max_concurrent: %d user: %s",
		 tsg_duration_format(ex_timeout(d), dur, sizeof(dur)), ex_max_concurrent(d),
		 qu ? qu : "-");
	tsg_act_dry(c, d, "timeout", line, false);
	free(qa);
	free(qe);
	free(qu);
	tsg_act_free_vec(argv);
	tsg_act_free_vec(envp);
}

/* ---- the queue -------------------------------------------------------- */

static void wake(struct tsg_act_runner *base)
{
	struct tsg_exec_runner *r = (struct tsg_exec_runner *)base;
	uint64_t one = 1;

	if (write(r->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread is awake anyway */
	}
}

static struct ex_slot *slot_get(struct tsg_exec_runner *r, const char *name)
{
	return TSG_ACT_NAMED_GET(struct ex_slot, r->slots, r->nslots, EX_MAX_SLOTS, name);
}

void tsg_exec_fire(struct tsg_exec_runner *r, struct tsg_act_ctx *c,
		   const struct tsg_action_def *d, struct tsg_act_stat *st)
{
	struct ex_job *j = calloc(1, sizeof(*j));
	const char *rule = c->a->rule->name;
	struct ex_slot *s;
	const char *why = NULL;
	bool ok = false;

	if (!d->exec.argc) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: empty argv", rule, d->name);
		free(j);
		return;
	}
	if (j) {
		const char *json = tsg_act_ctx_json(c);

		ok = tsg_act_job_init(&j->h, d->name, rule, st);
		j->argv = ex_argv(d, c->a);
		j->envp = ex_env(c->a);
		j->input_len = strlen(json) + 1;
		j->input = malloc(j->input_len + 1);
		if (j->input) {
			memcpy(j->input, json, j->input_len - 1);
			j->input[j->input_len - 1] = '\n';
			j->input[j->input_len] = 0;
		}
		j->user = d->exec.user ? strdup(d->exec.user) : NULL;
		j->timeout_ns = ex_timeout(d);
		j->max_concurrent = ex_max_concurrent(d);
	}
	if (!ok || !j->argv || !j->envp || !j->input ||
	    (d->exec.user && !j->user)) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: out of memory", rule, d->name);
		job_free(j);
		return;
	}
	pthread_mutex_lock(&r->base.lock);
	s = slot_get(r, d->name);
	if (r->base.stop)
		why = "shutting down";
	else if (!s)
		why = "too many exec actions";
	else if (s->q.n >= r->base.cap)
		why = "queue full";
	if (!why) {
		tsg_act_fifo_push(&s->q, &j->link);
		atomic_fetch_add(&st->queued_now, 1);
	}
	pthread_mutex_unlock(&r->base.lock);
	if (why) {
		uint64_t n;

		if (tsg_act_count_drop(st, &n))
			act_warn("rule %s action %s: %s (%zu queued), notification dropped "
				 "(%" PRIu64 " dropped so far)",
				 rule, d->name, why, r->base.cap, n);
		job_free(j);
		return;
	}
	tsg_act_runner_wake(&r->base);
}

/* ---- spawning ------------------------------------------------------------ */

/* A pipe whose ends are >= 3, so the child's dup2 onto 0..2 never clobbers. */
static int pipe3(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		if (p[i] < 3) {
			int nfd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
			if (nfd < 0) {
				int e = errno;
				close(p[0]);
				close(p[1]);
				return -e;
			}
			close(p[i]);
			p[i] = nfd;
		}
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* argv[0] without a '/' is looked up in EX_PATH (before fork: malloc-free child). */
static int resolve_path(const char *cmd, char *out, size_t len)
{
	const char *p = EX_PATH;

	if (strchr(cmd, '/')) {
		snprintf(out, len, "%s", cmd);
		return 0;
	}
	while (*p) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		snprintf(out, len, "%.*s/%s", (int)n, p, cmd);
		if (access(out, X_OK) == 0)
			return 0;
		p += n + (e ? 1 : 0);
	}
	return -ENOENT;
}

struct ex_ids {
	bool set;
	uid_t uid;
	gid_t gid;
	gid_t groups[EX_MAX_GROUPS];
	int ngroups;
};

static int lookup_user(const char *user, struct ex_ids *ids)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	int n = EX_MAX_GROUPS, err;

	err = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (err)
		return -err;
	if (!res)
		return -ESRCH;
	ids->set = true;
	ids->uid = pw.pw_uid;
	ids->gid = pw.pw_gid;
	if (getgrouplist(user, pw.pw_gid, ids->groups, &n) < 0)
		n = EX_MAX_GROUPS; /* more than fit: the first EX_MAX_GROUPS */
	ids->ngroups = n;
	return 0;
}

/* In the child: only async-signal-safe calls from here to execve. */
static void __attribute__((noreturn))
child_exec(const char *path, char **argv, char **envp, int in, int out, int err, int rep,
	   const struct ex_ids *ids)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int msg[2];

	setpgid(0, 0); /* its own group: a timeout kills its children too */
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
		msg[0] = 0;
		goto fail;
	}
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 4096; fd++)
			if (fd != rep)
				close(fd);
	}
	if (ids->set) {
		msg[0] = 1;
		if (setgroups((size_t)ids->ngroups, ids->groups) < 0 || setgid(ids->gid) < 0 ||
		    setuid(ids->uid) < 0)
			goto fail;
	}
	msg[0] = 2;
	execve(path, argv, envp);
fail:
	msg[1] = errno;
	if (write(rep, msg, sizeof(msg)) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(127);
}

static void stream_init(struct ex_stream *s, int fd, const char *what)
{
	s->fd = fd;
	s->what = what;
	s->len = 0;
	s->truncated = false;
}

/* Forks the job's hook. 0, or -errno with the job already accounted. */
static int spawn(struct tsg_exec_runner *r, struct ex_job *j, struct ex_slot *slot)
{
	static const char *const stage[] = { "redirect stdio", "switch user", "execute" };
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, prep[2] = { -1, -1 };
	struct ex_ids ids = { 0 };
	struct ex_child *k;
	char path[4096];
	int msg[2], err;
	ssize_t got = 0;
	pid_t pid;
	uint64_t now;

	if ((err = resolve_path(j->argv[0], path, sizeof(path))) < 0) {
		act_err("rule %s action %s: %s: not found in %s", j->h.rule, j->h.action, j->argv[0],
			EX_PATH);
		return err;
	}
	if (j->user && (err = lookup_user(j->user, &ids)) < 0) {
		act_err("rule %s action %s: user %s: %s", j->h.rule, j->h.action, j->user,
			err == -ESRCH ? "no such user" : strerror(-err));
		return err;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	if ((err = pipe3(pin)) < 0 || (err = pipe3(pout)) < 0 || (err = pipe3(perr)) < 0 ||
	    (err = pipe3(prep)) < 0) {
		act_err("rule %s action %s: pipe: %s", j->h.rule, j->h.action, strerror(-err));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		act_err("rule %s action %s: fork: %s", j->h.rule, j->h.action, strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(path, j->argv, j->envp, pin[0], pout[1], perr[1], prep[1], &ids);
	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	close_fd(&prep[1]);
	/* EOF: execve succeeded (the report pipe is close-on-exec) */
	do {
		got = read(prep[0], msg, sizeof(msg));
	} while (got < 0 && errno == EINTR);
	close_fd(&prep[0]);
	if (got == (ssize_t)sizeof(msg)) {
		int st;

		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		err = -msg[1];
		act_err("rule %s action %s: cannot %s %s: %s", j->h.rule, j->h.action,
			stage[msg[0] >= 0 && msg[0] <= 2 ? msg[0] : 2], path, strerror(msg[1]));
		goto fail;
	}
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	fcntl(pout[0], F_SETFL, O_NONBLOCK);
	fcntl(perr[0], F_SETFL, O_NONBLOCK);
	now = tsg_mono_ns();
	k->job = j;
	k->slot = slot;
	k->pid = pid;
#ifdef SYS_pidfd_open
	k->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	k->pidfd = -1;
#endif
	k->in_fd = pin[1];
	stream_init(&k->out, pout[0], "stdout");
	stream_init(&k->err, perr[0], "stderr");
	k->deadline = now + j->timeout_ns;
	if (r->stopping && k->deadline > r->stop_deadline)
		k->deadline = r->stop_deadline;
	r->kids[r->nkids++] = k;
	return 0;
fail:
	close_fd(&pin[0]);
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&pout[1]);
	close_fd(&perr[0]);
	close_fd(&perr[1]);
	close_fd(&prep[0]);
	close_fd(&prep[1]);
	free(k);
	return err ? err : -EIO;
}

/* ---- watching ------------------------------------------------------------ */

/* What a non-blocking read or write that returned n asks for next. */
enum io_next { IO_MORE, IO_WAIT, IO_END };

static enum io_next io_next(ssize_t n)
{
	if (n > 0 || (n < 0 && errno == EINTR))
		return IO_MORE;
	return n < 0 && errno == EAGAIN ? IO_WAIT : IO_END;
}

static void stream_read(struct ex_stream *s)
{
	char scratch[4096];

	while (s->fd >= 0) {
		char *dst = s->len < EX_OUT_MAX ? s->buf + s->len : scratch;
		size_t room = s->len < EX_OUT_MAX ? EX_OUT_MAX - s->len : sizeof(scratch);
		ssize_t n = read(s->fd, dst, room);
		enum io_next next = io_next(n);

		if (n > 0 && dst == scratch)
			s->truncated = true;
		else if (n > 0)
			s->len += (size_t)n;
		if (next == IO_WAIT)
			return;
		if (next == IO_END)
			close_fd(&s->fd); /* EOF or error */
	}
}

static void stream_log(const struct ex_child *k, const struct ex_stream *s)
{
	size_t i = 0;

	while (i < s->len) {
		const char *nl = memchr(s->buf + i, '\n', s->len - i);
		size_t n = nl ? (size_t)(nl - (s->buf + i)) : s->len - i;

		act_info("action %s: %s: %.*s", k->job->h.action, s->what, (int)n, s->buf + i);
		i += n + 1;
	}
	if (s->truncated)
		act_info("action %s: %s: (more output dropped after %d bytes)", k->job->h.action,
			 s->what, EX_OUT_MAX);
}

static void stdin_write(struct ex_child *k)
{
	struct ex_job *j = k->job;

	while (k->in_fd >= 0 && k->in_off < j->input_len) {
		ssize_t n = write(k->in_fd, j->input + k->in_off, j->input_len - k->in_off);
		enum io_next next = io_next(n);

		if (n > 0)
			k->in_off += (size_t)n;
		if (next == IO_WAIT)
			return;
		if (next == IO_MORE)
			continue;
		if (n < 0 && errno == EPIPE) {
			/* the hook does not read stdin: fine. SIGPIPE is blocked
			 * in this thread; take the pending one away. */
			sigset_t pipe_set;
			struct timespec zero = { 0, 0 };

			sigemptyset(&pipe_set);
			sigaddset(&pipe_set, SIGPIPE);
			sigtimedwait(&pipe_set, NULL, &zero);
		}
		break;
	}
	close_fd(&k->in_fd); /* all written, or the hook closed its end */
}

static void child_done(struct tsg_exec_runner *r, size_t idx, int status, bool lost)
{
	struct ex_child *k = r->kids[idx];
	struct ex_job *j = k->job;
	struct tsg_act_stat *st = j->h.st;
	char dur[32];

	stream_read(&k->out);
	stream_read(&k->err);
	stream_log(k, &k->out);
	stream_log(k, &k->err);
	if (k->phase > 0) {
		atomic_fetch_add(&st->timed_out, 1);
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: %s timed out after %s; killed with %s", j->h.rule,
			j->h.action, j->argv[0], tsg_duration_format(j->timeout_ns, dur, sizeof(dur)),
			k->phase == 1 ? "SIGTERM" : "SIGKILL");
	} else if (lost) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: %s (pid %d): exit status lost (reaped elsewhere)",
			j->h.rule, j->h.action, j->argv[0], (int)k->pid);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		atomic_fetch_add(&st->sent, 1);
	} else if (WIFEXITED(status)) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: %s exited with status %d", j->h.rule, j->h.action,
			j->argv[0], WEXITSTATUS(status));
	} else {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: %s killed by signal %d", j->h.rule, j->h.action, j->argv[0],
			WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	atomic_fetch_sub(&st->queued_now, 1);
	close_fd(&k->pidfd);
	close_fd(&k->in_fd);
	close_fd(&k->out.fd);
	close_fd(&k->err.fd);
	pthread_mutex_lock(&r->base.lock);
	k->slot->running--;
	pthread_mutex_unlock(&r->base.lock);
	job_free(j);
	free(k);
	r->kids[idx] = r->kids[--r->nkids];
}

/* Reaps the child if it has exited. true when done with it. */
static bool try_reap(struct tsg_exec_runner *r, size_t idx)
{
	struct ex_child *k = r->kids[idx];
	int status = 0;
	pid_t p;

	do {
		p = waitpid(k->pid, &status, WNOHANG);
	} while (p < 0 && errno == EINTR);
	if (p == 0)
		return false;
	child_done(r, idx, status, p < 0);
	return true;
}

static void check_timeouts(struct tsg_exec_runner *r, uint64_t now)
{
	for (size_t i = 0; i < r->nkids; i++) {
		struct ex_child *k = r->kids[i];

		if (r->stopping && k->deadline > r->stop_deadline)
			k->deadline = r->stop_deadline;
		if (k->phase == 0 && now >= k->deadline) {
			kill(-k->pid, SIGTERM);
			kill(k->pid, SIGTERM); /* in case setpgid had not run yet */
			k->phase = 1;
			k->kill_at = now + TSG_ACT_GRACE_NS;
		} else if (k->phase == 1 && now >= k->kill_at) {
			kill(-k->pid, SIGKILL);
			kill(k->pid, SIGKILL);
			k->phase = 2;
			k->kill_at = now + TSG_ACT_GRACE_NS;
		} else if (k->phase == 2 && now >= k->kill_at) {
			/* SIGKILL does not take (uninterruptible sleep): leave it */
			act_err("rule %s action %s: pid %d survives SIGKILL; abandoned",
				k->job->h.rule, k->job->h.action, (int)k->pid);
			k->phase = 3;
		}
	}
}

/* Takes runnable jobs off the queues (and, past the stop deadline, drops the rest). */
static void start_jobs(struct tsg_exec_runner *r, uint64_t now)
{
	struct ex_job *run[EX_MAX_CHILDREN], *j;
	struct ex_slot *slots[EX_MAX_CHILDREN];
	struct tsg_act_link *drop = NULL; /* last taken first */
	size_t nrun = 0;

	pthread_mutex_lock(&r->base.lock);
	if (r->base.stop && !r->stopping) {
		/* pending work gets its timeout: the longest one pending */
		uint64_t longest = 0;

		for (size_t i = 0; i < r->nkids; i++)
			if (r->kids[i]->deadline > now && r->kids[i]->deadline - now > longest)
				longest = r->kids[i]->deadline - now;
		for (struct ex_slot *s = r->slots; s; s = s->next)
			for (struct tsg_act_link *l = s->q.head; l; l = l->next)
				if (((struct ex_job *)l)->timeout_ns > longest)
					longest = ((struct ex_job *)l)->timeout_ns;
		r->stopping = true;
		r->stop_deadline = now + longest;
	}
	for (struct ex_slot *s = r->slots; s; s = s->next) {
		while (s->q.head && r->stopping && now >= r->stop_deadline) {
			struct tsg_act_link *l = tsg_act_fifo_pop(&s->q);

			l->next = drop;
			drop = l;
		}
		while (s->q.head && s->running < ((struct ex_job *)s->q.head)->max_concurrent &&
		       r->nkids + nrun < EX_MAX_CHILDREN) {
			s->running++;
			slots[nrun] = s;
			run[nrun++] = tsg_act_fifo_pop(&s->q);
		}
	}
	pthread_mutex_unlock(&r->base.lock);
	while ((j = (struct ex_job *)drop)) {
		drop = drop->next;
		atomic_fetch_add(&j->h.st->dropped, 1);
		atomic_fetch_sub(&j->h.st->queued_now, 1);
		act_warn("rule %s action %s: not started before shutdown; dropped", j->h.rule,
			 j->h.action);
		job_free(j);
	}
	for (size_t i = 0; i < nrun; i++) {
		if (spawn(r, run[i], slots[i]) == 0)
			continue;
		atomic_fetch_add(&run[i]->h.st->failed, 1);
		atomic_fetch_sub(&run[i]->h.st->queued_now, 1);
		pthread_mutex_lock(&r->base.lock);
		slots[i]->running--;
		pthread_mutex_unlock(&r->base.lock);
		job_free(run[i]);
	}
}

static bool queues_empty(struct tsg_exec_runner *r)
{
	bool empty = true;

	pthread_mutex_lock(&r->base.lock);
	for (struct ex_slot *s = r->slots; s && empty; s = s->next)
		empty = !s->q.head;
	pthread_mutex_unlock(&r->base.lock);
	return empty;
}

static void *ex_main(void *arg)
{
	struct tsg_exec_runner *r = arg;
	struct pollfd pfd[1 + 4 * EX_MAX_CHILDREN];

	for (;;) {
		uint64_t now = tsg_mono_ns(), next = UINT64_MAX;
		nfds_t n = 0;
		int timeout;

		start_jobs(r, now);
		check_timeouts(r, now);
		for (size_t i = 0; i < r->nkids;)
			if (r->kids[i]->phase == 3) { /* abandoned */
				child_done(r, i, 0, true);
			} else if (r->kids[i]->pidfd < 0 && try_reap(r, i)) {
				/* no pidfd: polled */
			} else {
				i++;
			}
		if (r->stopping && !r->nkids && (queues_empty(r) || now >= r->stop_deadline))
			break;

		pfd[n++] = (struct pollfd){ .fd = r->wake_fd, .events = POLLIN };
		for (size_t i = 0; i < r->nkids; i++) {
			struct ex_child *k = r->kids[i];
			uint64_t t = k->phase == 0 ? k->deadline : k->kill_at;

			pfd[n++] = (struct pollfd){ .fd = k->pidfd, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = k->out.fd, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = k->err.fd, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = k->in_fd, .events = POLLOUT };
			if (t < next)
				next = t;
			if (k->pidfd < 0 && now + 50 * TSG_NSEC_PER_MSEC < next)
				next = now + 50 * TSG_NSEC_PER_MSEC;
		}
		if (r->stopping && r->stop_deadline < next)
			next = r->stop_deadline;
		if (next == UINT64_MAX)
			timeout = -1;
		else if (next <= now)
			timeout = 0;
		else
			timeout = (int)((next - now + TSG_NSEC_PER_MSEC - 1) / TSG_NSEC_PER_MSEC);
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			act_err("exec: poll: %s", strerror(errno));
		if (pfd[0].revents) {
			uint64_t v;
			if (read(r->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: nothing to take */
			}
		}
		/* kids[] is compacted on removal: walk it from the end */
		for (size_t i = r->nkids; i-- > 0;) {
			struct ex_child *k = r->kids[i];
			struct pollfd *p = &pfd[1 + 4 * i];

			if (p[1].revents)
				stream_read(&k->out);
			if (p[2].revents)
				stream_read(&k->err);
			if (p[3].revents)
				stdin_write(k);
			if (p[0].revents)
				try_reap(r, i);
		}
	}
	return NULL;
}

static int ex_init(struct tsg_act_runner *base, const void *arg)
{
	struct tsg_exec_runner *r = (struct tsg_exec_runner *)base;

	(void)arg;
	r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return r->wake_fd < 0 ? -errno : 0;
}

/* After the join (by the stop deadline plus two graces): what never started. */
static void ex_fini(struct tsg_act_runner *base)
{
	struct tsg_exec_runner *r = (struct tsg_exec_runner *)base;
	struct ex_slot *s, *n;

	for (s = r->slots; s; s = n) {
		struct ex_job *j;

		n = s->next;
		while ((j = tsg_act_fifo_pop(&s->q)))
			job_free(j);
		free(s->name);
		free(s);
	}
	close(r->wake_fd);
}

static const struct tsg_act_runner_def ex_def = {
	"exec", "supervisor", 256, ex_main, wake, ex_init, ex_fini, NULL,
};

int tsg_exec_runner_new(size_t queue_cap, struct tsg_exec_runner **out)
{
	return tsg_act_runner_new(sizeof(**out), &ex_def, queue_cap, NULL, out);
}
