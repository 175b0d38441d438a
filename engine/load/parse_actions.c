/* SPDX-License-Identifier: MIT */
/*
 * tsguard: `actions:` (docs/rules.md "actions") and template fields in YAML.
 */
#include "load_priv.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#define MAX_RETRIES 20
#define MAX_CONCURRENT 1024
#define MAX_ARGV 256

/* ---- templates in YAML --------------------------------------------------- */

static const char *const tfield_cands[] = {
	"rule",	 "severity", "status", "summary",  "host",	  "time",  "comm",
	"pid",	 "uid",	     "cgroup", "family",   "laddr",	  "lport", "raddr",
	"rport", "state",    "from",   "to",	   "duration", "duration_ms",
	"count", "rate",     "key",    "labels.NAME", "queue", "backlog", "drops", NULL,
};

int ld_template(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what,
		struct tsg_template *t)
{
	const char *s, *msg = NULL;
	size_t off = 0;
	char w[128];
	int r;

	snprintf(w, sizeof(w), "a string (template) for %s", what);
	if (n && n->type == YAML_SCALAR_NODE && ld_is_null(n) && n->data.scalar.length == 0) {
		ld_err(L, f, n, "expected %s", w);
		return -EINVAL;
	}
	if (!n || n->type != YAML_SCALAR_NODE) {
		ld_err(L, f, n, "expected %s", w);
		return -EINVAL;
	}
	s = (const char *)n->data.scalar.value;
	r = tsg_template_parse(s, t, &off, &msg);
	if (r == -ENOMEM) {
		L->oom = true;
		return r;
	}
	if (r < 0) {
		if (msg && !strcmp(msg, "unknown template field")) {
			char name[96], dym[128];
			size_t k = 0;

			while (s[off + k] && s[off + k] != '}' && s[off + k] != ' ' &&
			       s[off + k] != '\t' && k < sizeof(name) - 1) {
				name[k] = s[off + k];
				k++;
			}
			name[k] = 0;
			ld_err_at(L, f, n, off,
				  "unknown template field \"%s\" in %s (fields: rule severity status summary host time comm pid uid cgroup family laddr lport raddr rport state from to duration duration_ms count rate key labels.NAME queue backlog drops)%s",
				  name, what, ld_dym(name, tfield_cands, dym, sizeof(dym)));
		} else {
			ld_err_at(L, f, n, off, "bad template for %s: %s", what,
				  msg ? msg : "syntax error");
		}
		return -EINVAL;
	}
	return 0;
}

static int add_labels_used(struct tsg_action_def *a, const struct tsg_template *t)
{
	a->fields_used |= t->fields_used;
	for (size_t i = 0; i < t->nlabels_used; i++) {
		bool have = false;
		char **nl;

		for (size_t j = 0; j < a->nlabels_used; j++)
			if (!strcmp(a->labels_used[j], t->labels_used[i]))
				have = true;
		if (have)
			continue;
		nl = realloc(a->labels_used, (a->nlabels_used + 1) * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		a->labels_used = nl;
		nl[a->nlabels_used] = strdup(t->labels_used[i]);
		if (!nl[a->nlabels_used])
			return -ENOMEM;
		a->nlabels_used++;
	}
	return 0;
}

/* ---- per type -------------------------------------------------------------- */

static const struct {
	const char *name;
	int fac;
} facilities[] = {
	{ "kern", LOG_KERN },	  { "user", LOG_USER },	    { "mail", LOG_MAIL },
	{ "daemon", LOG_DAEMON }, { "auth", LOG_AUTH },	    { "syslog", LOG_SYSLOG },
	{ "lpr", LOG_LPR },	  { "news", LOG_NEWS },	    { "uucp", LOG_UUCP },
	{ "cron", LOG_CRON },	  { "authpriv", LOG_AUTHPRIV }, { "ftp", LOG_FTP },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};
#define NFAC (sizeof(facilities) / sizeof(facilities[0]))

const char *tsg_facility_name(int facility)
{
	for (size_t i = 0; i < NFAC; i++)
		if (facilities[i].fac == facility)
			return facilities[i].name;
	return "?";
}

/* One of `words` (NULL-terminated): its index, or an error with the nearest. */
static int pick(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what,
		const char *const *words)
{
	char w[160], list[256], dym[96];
	const char *s;

	snprintf(w, sizeof(w), "%s (%s)", what, ld_join(words, list, sizeof(list)));
	s = ld_scalar(L, f, n, w);
	if (!s)
		return -EINVAL;
	for (int i = 0; words[i]; i++)
		if (!strcmp(s, words[i]))
			return i;
	ld_err(L, f, n, "unknown %s \"%s\": expected %s%s", what, s, list,
	       ld_dym(s, words, dym, sizeof(dym)));
	return -EINVAL;
}

static const char *const syslog_keys[] = { "name", "type", "facility", "ident", "format", NULL };
static const char *const exec_keys[] = { "name", "type", "argv", "timeout", "max_concurrent",
					 "user", NULL };
static const char *const webhook_keys[] = { "name",    "type",	  "url",     "format",
					    "body",    "headers", "timeout", "retries",
					    NULL };
static const char *const destroy_keys[] = { "name", "type", "max_per_minute", NULL };

static int ld_syslog(struct ld *L, struct ld_file *f, yaml_node_t **vn, struct tsg_action_def *a)
{
	static const char *const fmts[] = { "text", "json", NULL };
	int r = 0;

	a->syslog.facility = LOG_DAEMON;
	a->syslog.format = TSG_SYSLOG_TEXT;
	if (vn[2]) {
		const char *names[NFAC + 1];
		size_t i;
		const char *s;

		for (i = 0; i < NFAC; i++)
			names[i] = facilities[i].name;
		names[NFAC] = NULL;
		s = ld_scalar(L, f, vn[2], "a syslog facility");
		if (s) {
			for (i = 0; i < NFAC; i++)
				if (!strcasecmp(s, names[i]))
					break;
			if (i < NFAC) {
				a->syslog.facility = facilities[i].fac;
			} else {
				char dym[96];

				ld_err(L, f, vn[2],
				       "unknown syslog facility \"%s\": expected kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp or local0 to local7%s",
				       s, ld_dym(s, names, dym, sizeof(dym)));
				r = -EINVAL;
			}
		} else {
			r = -EINVAL;
		}
	}
	if (vn[3]) {
		const char *s = ld_scalar(L, f, vn[3], "a syslog ident");

		if (s && strlen(s) > 64) {
			ld_err(L, f, vn[3], "syslog ident too long (at most 64 characters)");
			s = NULL;
		}
		if (!s)
			r = -EINVAL;
		else if (!(a->syslog.ident = strdup(s)))
			return -ENOMEM;
	}
	if (!a->syslog.ident && !(a->syslog.ident = strdup("tsguard")))
		return -ENOMEM;
	if (vn[4]) {
		int i = pick(L, f, vn[4], "syslog format", fmts);

		if (i < 0)
			r = -EINVAL;
		else
			a->syslog.format = i == 0 ? TSG_SYSLOG_TEXT : TSG_SYSLOG_JSON;
	}
	return r;
}

static int ld_exec(struct ld *L, struct ld_file *f, yaml_node_t *an, yaml_node_t **vn,
		   uint64_t guessed, struct tsg_action_def *a)
{
	uint64_t v;
	int r = 0;

	a->exec.timeout_ns = 30 * TSG_NSEC_PER_SEC;
	a->exec.max_concurrent = 4;
	if (!vn[2]) {
		if (!LD_GUESSED(guessed, 2)) /* else the misspelt key is the error */
			ld_err(L, f, an,
			       "exec action \"%s\" needs argv: [/absolute/program, args...]",
			       a->name);
		r = -EINVAL;
	} else if (vn[2]->type != YAML_SEQUENCE_NODE ||
		   vn[2]->data.sequence.items.start == vn[2]->data.sequence.items.top) {
		ld_err(L, f, vn[2],
		       "expected a non-empty list for argv (e.g. [/usr/local/sbin/x, \"{{raddr}}\"]); no shell is ever used");
		r = -EINVAL;
	} else {
		size_t n = (size_t)(vn[2]->data.sequence.items.top - vn[2]->data.sequence.items.start);

		if (n > MAX_ARGV) {
			ld_err(L, f, vn[2], "argv too long (at most %d elements)", MAX_ARGV);
			return -EINVAL;
		}
		a->exec.argv = calloc(n, sizeof(*a->exec.argv));
		if (!a->exec.argv)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *in = ld_node(f, vn[2]->data.sequence.items.start[i]);
			struct tsg_template *t = &a->exec.argv[a->exec.argc];
			char what[32];
			int r1;

			snprintf(what, sizeof(what), "argv[%zu]", i);
			r1 = ld_template(L, f, in, what, t);
			if (r1 == -ENOMEM)
				return r1;
			if (r1 < 0) {
				r = r1;
				continue;
			}
			a->exec.argc++;
			if (i == 0 && (t->src[0] != '/' || t->fields_used)) {
				ld_err(L, f, in,
				       "argv[0] \"%s\" must be a fixed absolute path (starting with \"/\", no {{fields}}); no shell is ever used",
				       t->src);
				r = -EINVAL;
			}
			if (add_labels_used(a, t) < 0)
				return -ENOMEM;
		}
	}
	if (vn[3] && ld_duration(L, f, vn[3], "timeout", true, &a->exec.timeout_ns) < 0)
		r = -EINVAL;
	if (vn[4]) {
		if (ld_uint(L, f, vn[4], "max_concurrent", MAX_CONCURRENT, &v) < 0) {
			r = -EINVAL;
		} else if (!v) {
			ld_err(L, f, vn[4], "max_concurrent must be at least 1");
			r = -EINVAL;
		} else {
			a->exec.max_concurrent = (int)v;
		}
	}
	if (vn[5]) {
		const char *s = ld_scalar(L, f, vn[5], "a user name for user");

		if (!s) {
			r = -EINVAL;
		} else if (!getpwnam(s)) {
			ld_err(L, f, vn[5], "unknown user \"%s\" (no such entry in the user database)", s);
			r = -EINVAL;
		} else if (!(a->exec.user = strdup(s))) {
			return -ENOMEM;
		}
	}
	return r;
}

static bool header_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 128)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			 "!#$%&'*+-.^_`|~") == n;
}

/* One URL of `url:` (the scalar, or one item of the list) into urls[nurls]. */
static int ld_webhook_url(struct ld *L, struct ld_file *f, yaml_node_t *n,
			  struct tsg_action_def *a)
{
	const char *s = ld_scalar(L, f, n, "a URL for url");

	if (!s)
		return -EINVAL;
	if (!((!strncmp(s, "http://", 7) && s[7]) || (!strncmp(s, "https://", 8) && s[8])) ||
	    strpbrk(s, " \t\r\n")) {
		ld_err(L, f, n, "bad url \"%s\": expected http://HOST... or https://HOST...", s);
		return -EINVAL;
	}
	for (size_t i = 0; i < a->webhook.nurls; i++)
		if (!strcmp(a->webhook.urls[i], s)) {
			ld_err(L, f, n, "url \"%s\" is listed twice", s);
			return -EINVAL;
		}
	if (!(a->webhook.urls[a->webhook.nurls] = strdup(s)))
		return -ENOMEM;
	a->webhook.nurls++;
	return 0;
}

/* `url:` as one URL or a list of 1..TSG_WH_MAX_URLS distinct URLs. */
static int ld_webhook_urls(struct ld *L, struct ld_file *f, yaml_node_t *n,
			   struct tsg_action_def *a)
{
	size_t cnt = 1;
	int r = 0;

	if (n->type == YAML_SEQUENCE_NODE) {
		cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
		if (!cnt || cnt > TSG_WH_MAX_URLS) {
			ld_err(L, f, n, "expected a URL or a list of 1 to %d URLs for url",
			       TSG_WH_MAX_URLS);
			return -EINVAL;
		}
	}
	a->webhook.urls = calloc(cnt, sizeof(*a->webhook.urls));
	if (!a->webhook.urls)
		return -ENOMEM;
	if (n->type != YAML_SEQUENCE_NODE)
		return ld_webhook_url(L, f, n, a);
	for (size_t i = 0; i < cnt; i++) {
		int r1 = ld_webhook_url(L, f, ld_node(f, n->data.sequence.items.start[i]), a);

		if (r1 == -ENOMEM)
			return r1;
		if (r1 < 0)
			r = r1;
	}
	return r;
}

/* url (vn[2]): one URL or a list; missing is an error unless a misspelt key
 * is the error. */
static int wh_url(struct ld *L, struct ld_file *f, yaml_node_t *an, yaml_node_t *n,
		  uint64_t guessed, struct tsg_action_def *a)
{
	if (!n) {
		if (!LD_GUESSED(guessed, 2)) /* else the misspelt key is the error */
			ld_err(L, f, an,
			       "webhook action \"%s\" needs url: http://... or https://...",
			       a->name);
		return -EINVAL;
	}
	return ld_webhook_urls(L, f, n, a);
}

/* format (vn[3]) and body (vn[4]); a body needs format: template and back. */
static int wh_format_body(struct ld *L, struct ld_file *f, yaml_node_t **vn, uint64_t guessed,
			  struct tsg_action_def *a)
{
	static const char *const fmts[] = { "json", "template", "alertmanager", NULL };
	static const int fmt_val[] = { TSG_WH_JSON, TSG_WH_TEMPLATE, TSG_WH_ALERTMANAGER };
	int r = 0, r1;

	if (vn[3]) {
		int i = pick(L, f, vn[3], "webhook format", fmts);

		if (i < 0)
			r = -EINVAL;
		else
			a->webhook.format = fmt_val[i];
	}
	if (!vn[4]) {
		if (a->webhook.format == TSG_WH_TEMPLATE && vn[3]) {
			if (!LD_GUESSED(guessed, 4))
				ld_err(L, f, vn[3],
				       "format: template needs a body: '...{{summary}}...'");
			r = -EINVAL;
		}
		return r;
	}
	if (vn[3] && a->webhook.format != TSG_WH_TEMPLATE) {
		ld_err(L, f, vn[4], "body is only used with format: template");
		return -EINVAL;
	}
	if (!vn[3]) {
		if (!LD_GUESSED(guessed, 3))
			ld_err(L, f, vn[4], "body is only used with format: template (add format: template)");
		return -EINVAL;
	}
	r1 = ld_template(L, f, vn[4], "body", &a->webhook.body);
	if (r1 < 0)
		return r1;
	if (add_labels_used(a, &a->webhook.body) < 0)
		return -ENOMEM;
	return r;
}

/* One header of the mapping: 0 (added), -EINVAL (diagnosed) or -ENOMEM. */
static int wh_header(struct ld *L, struct ld_file *f, yaml_node_pair_t *p, struct tsg_action_def *a)
{
	yaml_node_t *k = ld_node(f, p->key), *val = ld_node(f, p->value);
	struct tsg_header *hd = &a->webhook.headers[a->webhook.nheaders];
	const char *ks = ld_scalar(L, f, k, "a header name");
	char what[160];
	int r1;

	if (!ks)
		return -EINVAL;
	if (!header_name_ok(ks)) {
		ld_err(L, f, k,
		       "bad header name \"%s\": expected an HTTP token (letters, digits, -)", ks);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "header %s", ks);
	r1 = ld_template(L, f, val, what, &hd->value);
	if (r1 < 0)
		return r1;
	if (strpbrk(hd->value.src, "\r\n")) {
		ld_err(L, f, val, "header %s: a value cannot hold a line break", ks);
		tsg_template_fini(&hd->value);
		return -EINVAL;
	}
	hd->name = strdup(ks);
	if (!hd->name) {
		tsg_template_fini(&hd->value);
		return -ENOMEM;
	}
	a->webhook.nheaders++;
	return add_labels_used(a, &hd->value) < 0 ? -ENOMEM : 0;
}

static int wh_headers(struct ld *L, struct ld_file *f, yaml_node_t *h, struct tsg_action_def *a)
{
	size_t n;
	int r = 0;

	if (h->type != YAML_MAPPING_NODE) {
		ld_err(L, f, h, "expected a mapping of header names to values for headers");
		return -EINVAL;
	}
	n = (size_t)(h->data.mapping.pairs.top - h->data.mapping.pairs.start);
	a->webhook.headers = calloc(n ? n : 1, sizeof(*a->webhook.headers));
	if (!a->webhook.headers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r1 = wh_header(L, f, &h->data.mapping.pairs.start[i], a);

		if (r1 == -ENOMEM)
			return r1;
		if (r1 < 0)
			r = r1;
	}
	return r;
}

static int ld_webhook(struct ld *L, struct ld_file *f, yaml_node_t *an, yaml_node_t **vn,
		      uint64_t guessed, struct tsg_action_def *a)
{
	int r = 0, rs[3];
	uint64_t v;

	a->webhook.format = TSG_WH_JSON;
	a->webhook.timeout_ns = 5 * TSG_NSEC_PER_SEC;
	a->webhook.retries = 3;
	rs[0] = wh_url(L, f, an, vn[2], guessed, a);
	rs[1] = wh_format_body(L, f, vn, guessed, a);
	rs[2] = vn[5] ? wh_headers(L, f, vn[5], a) : 0;
	for (size_t i = 0; i < 3; i++) {
		if (rs[i] == -ENOMEM)
			return -ENOMEM;
		if (rs[i] < 0)
			r = rs[i];
	}
	if (vn[6] && ld_duration(L, f, vn[6], "timeout", true, &a->webhook.timeout_ns) < 0)
		r = -EINVAL;
	if (vn[7]) {
		if (ld_uint(L, f, vn[7], "retries", MAX_RETRIES, &v) < 0)
			r = -EINVAL;
		else
			a->webhook.retries = (int)v;
	}
	return r;
}

static int ld_destroy(struct ld *L, struct ld_file *f, yaml_node_t **vn, struct tsg_action_def *a)
{
	uint64_t v;

	a->destroy.max_per_minute = TSG_DESTROY_PER_MINUTE;
	if (!vn[2])
		return 0;
	if (ld_uint(L, f, vn[2], "max_per_minute", TSG_DESTROY_PER_MINUTE_MAX, &v) < 0)
		return -EINVAL;
	if (!v) {
		ld_err(L, f, vn[2], "max_per_minute must be 1 to %d", TSG_DESTROY_PER_MINUTE_MAX);
		return -EINVAL;
	}
	a->destroy.max_per_minute = (uint32_t)v;
	return 0;
}

static struct tsg_action_def *find_action(struct ld *L, const char *name)
{
	for (size_t i = 0; i < L->rs->nactions; i++)
		if (!strcmp(L->rs->actions[i].name, name))
			return &L->rs->actions[i];
	return NULL;
}

static int append_action(struct ld *L, struct tsg_action_def *a)
{
	struct tsg_action_def *na =
		realloc(L->rs->actions, (L->rs->nactions + 1) * sizeof(*na));

	if (!na)
		return -ENOMEM;
	L->rs->actions = na;
	na[L->rs->nactions++] = *a;
	return 0;
}

static const char *const *const type_keys[TSG_ACT_N] = {
	[TSG_ACT_SYSLOG] = syslog_keys,
	[TSG_ACT_EXEC] = exec_keys,
	[TSG_ACT_WEBHOOK] = webhook_keys,
	[TSG_ACT_DESTROY] = destroy_keys,
};
static const char *const all_keys[] = {"name", "type",	  "facility",	    "ident", "format",
				       "argv", "timeout", "max_concurrent", "user",  "url",
				       "body", "headers", "retries",	    NULL};

/* The value of key `key` of the action mapping (the first), or NULL. */
static yaml_node_t *action_value(struct ld_file *f, yaml_node_t *an, const char *key)
{
	for (yaml_node_pair_t *p = an->data.mapping.pairs.start; p < an->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = ld_node(f, p->key);

		if (k && k->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)k->data.scalar.value, key))
			return ld_node(f, p->value);
	}
	return NULL;
}

/* An action without a name or a type: the error, or only the misspelt key
 * (ld_map) when one is close to the missing one. Always -EINVAL. */
static int action_untyped(struct ld *L, struct ld_file *f, yaml_node_t *an, const char *name)
{
	yaml_node_t *ak[16], *av[16];
	uint64_t guessed = ld_guess(f, an, all_keys);
	char what[128];

	if (!name) {
		if (LD_GUESSED(guessed, 0))
			ld_map(L, f, an, "action", all_keys, ak, av);
		else
			ld_err(L, f, an, "an action needs a name");
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "action \"%s\"", name);
	ld_map(L, f, an, what, all_keys, ak, av);
	if (!LD_GUESSED(guessed, 1))
		ld_err(L, f, an, "action \"%s\" needs a type: syslog, exec, webhook or destroy", name);
	return -EINVAL;
}

static int ld_action(struct ld *L, struct ld_file *f, yaml_node_t *an)
{
	yaml_node_t *kn[8], *vn[8], *type_node, *name_node;
	const struct tsg_action_def *prev;
	struct tsg_action_def a = { 0 };
	uint64_t guessed;
	const char *name;
	char what[128];
	int type, r;

	if (!an || an->type != YAML_MAPPING_NODE) {
		ld_err(L, f, an, "expected an action (a mapping with name and type)");
		return -EINVAL;
	}
	type_node = action_value(f, an, "type");
	name_node = action_value(f, an, "name");
	if (!name_node)
		return action_untyped(L, f, an, NULL);
	name = ld_name(L, f, name_node, "action");
	if (!name)
		return -EINVAL;
	if (!type_node)
		return action_untyped(L, f, an, name);
	type = pick(L, f, type_node, "action type", tsg_action_type_names);
	if (type < 0)
		return -EINVAL;
	snprintf(what, sizeof(what), "%s action \"%s\"", tsg_action_type_name(type), name);
	ld_map(L, f, an, what, type_keys[type], kn, vn);
	guessed = ld_guess(f, an, type_keys[type]);

	prev = find_action(L, name);
	if (prev) {
		ld_err(L, f, name_node, "duplicate action name \"%s\" (first defined at %s:%d:%d)",
		       name, prev->file, prev->line, prev->col);
		return -EINVAL;
	}
	a.name = strdup(name);
	if (!a.name)
		return -ENOMEM;
	a.type = type; /* pick() indexes tsg_action_type_names */
	a.file = f->ipath;
	ld_pos(name_node, &a.line, &a.col);
	if (a.type == TSG_ACT_SYSLOG)
		r = ld_syslog(L, f, vn, &a);
	else if (a.type == TSG_ACT_EXEC)
		r = ld_exec(L, f, an, vn, guessed, &a);
	else if (a.type == TSG_ACT_DESTROY)
		r = ld_destroy(L, f, vn, &a);
	else
		r = ld_webhook(L, f, an, vn, guessed, &a);
	if (r == -ENOMEM) {
		tsg_action_def_fini(&a);
		return r;
	}
	/* kept even when invalid, so that rules naming it are not also wrong */
	if (append_action(L, &a) < 0) {
		tsg_action_def_fini(&a);
		return -ENOMEM;
	}
	return r;
}

int ld_actions(struct ld *L)
{
	struct tsg_action_def b = { 0 };

	for (size_t fi = 0; fi < L->nfiles; fi++) {
		struct ld_file *f = &L->files[fi];
		yaml_node_t *n = f->actions;

		if (!n || ld_is_null(n))
			continue;
		if (n->type != YAML_SEQUENCE_NODE) {
			ld_err(L, f, n, "expected a list of actions (- name: ...) for actions");
			continue;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++)
			if (ld_action(L, f, ld_node(f, *i)) == -ENOMEM) {
				L->oom = true;
				return -ENOMEM;
			}
	}
	if (find_action(L, "syslog"))
		return 0;
	b.name = strdup("syslog");
	b.syslog.ident = strdup("tsguard");
	if (!b.name || !b.syslog.ident) {
		tsg_action_def_fini(&b);
		return -ENOMEM;
	}
	b.type = TSG_ACT_SYSLOG;
	b.builtin = true;
	b.file = "(built-in)";
	b.syslog.facility = LOG_DAEMON;
	b.syslog.format = TSG_SYSLOG_TEXT;
	if (append_action(L, &b) < 0) {
		tsg_action_def_fini(&b);
		return -ENOMEM;
	}
	return 0;
}
