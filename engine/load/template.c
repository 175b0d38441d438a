/* SPDX-License-Identifier: MIT */
/*
 * tsguard: "{{ field }}" templates (docs/rules.md "Templates"), parsed and
 * checked at load time; expansion belongs to the alert side.
 */
#include "ruleset.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Longest field name inside the braces ("labels." + a 64-character name). */
#define TFIELD_MAXLEN 80

static const char *const tfield_names[TSG_TF_N] = {
	[TSG_TF_RULE] = "rule",
	[TSG_TF_SEVERITY] = "severity",
	[TSG_TF_STATUS] = "status",
	[TSG_TF_SUMMARY] = "summary",
	[TSG_TF_HOST] = "host",
	[TSG_TF_TIME] = "time",
	[TSG_TF_COMM] = "comm",
	[TSG_TF_PID] = "pid",
	[TSG_TF_UID] = "uid",
	[TSG_TF_CGROUP] = "cgroup",
	[TSG_TF_FAMILY] = "family",
	[TSG_TF_LADDR] = "laddr",
	[TSG_TF_LPORT] = "lport",
	[TSG_TF_RADDR] = "raddr",
	[TSG_TF_RPORT] = "rport",
	[TSG_TF_STATE] = "state",
	[TSG_TF_FROM] = "from",
	[TSG_TF_TO] = "to",
	[TSG_TF_DURATION] = "duration",
	[TSG_TF_DURATION_MS] = "duration_ms",
	[TSG_TF_COUNT] = "count",
	[TSG_TF_RATE] = "rate",
	[TSG_TF_KEY] = "key",
	[TSG_TF_NETNS] = "netns",
	[TSG_TF_NETNS_NAME] = "netns_name",
	[TSG_TF_CONTAINER] = "container",
	[TSG_TF_POD] = "pod",
	[TSG_TF_LABEL] = "labels",
	[TSG_TF_QUEUE] = "queue",
	[TSG_TF_BACKLOG] = "backlog",
	[TSG_TF_DROPS] = "drops",
};

const char *tsg_tfield_name(int f)
{
	if (f < 0 || f >= TSG_TF_N)
		return NULL;
	return tfield_names[f];
}

static bool label_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int tsg_tfield_parse(const char *s)
{
	if (!s)
		return -EINVAL;
	if (!strncmp(s, "labels.", 7))
		return label_name_ok(s + 7) ? TSG_TF_LABEL : -EINVAL;
	for (int f = 0; f < TSG_TF_N; f++)
		if (f != TSG_TF_LABEL && !strcmp(s, tfield_names[f]))
			return f;
	return -EINVAL;
}

void tsg_template_fini(struct tsg_template *t)
{
	if (!t)
		return;
	free(t->src);
	for (size_t i = 0; i < t->nseg; i++)
		free(t->seg[i].text);
	free(t->seg);
	for (size_t i = 0; i < t->nlabels_used; i++)
		free(t->labels_used[i]);
	free(t->labels_used);
	memset(t, 0, sizeof(*t));
}

static int seg_add(struct tsg_template *t, int field, const char *text, size_t len)
{
	struct tsg_tseg *ns = realloc(t->seg, (t->nseg + 1) * sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	t->seg = ns;
	ns[t->nseg].field = field;
	ns[t->nseg].text = NULL;
	if (text) {
		ns[t->nseg].text = strndup(text, len);
		if (!ns[t->nseg].text)
			return -ENOMEM;
	}
	t->nseg++;
	return 0;
}

static int label_add(struct tsg_template *t, const char *name)
{
	char **nl;

	for (size_t i = 0; i < t->nlabels_used; i++)
		if (!strcmp(t->labels_used[i], name))
			return 0;
	nl = realloc(t->labels_used, (t->nlabels_used + 1) * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	t->labels_used = nl;
	nl[t->nlabels_used] = strdup(name);
	if (!nl[t->nlabels_used])
		return -ENOMEM;
	t->nlabels_used++;
	return 0;
}

/*
 * Text outside "{{ }}" is literal (a lone "}}" too). Inside, optional spaces
 * around one field name. Errors: "{{" without "}}", an empty or unknown
 * field (err_off points at the field name, or at the "{{").
 */
int tsg_template_parse(const char *s, struct tsg_template *out, size_t *err_off,
		       const char **err_msg)
{
	struct tsg_template t = { 0 };
	const char *p = s, *open;
	const char *msg = NULL;
	size_t off = 0;
	int r = -EINVAL;

	if (!s) {
		msg = "no template";
		goto fail;
	}
	t.src = strdup(s);
	if (!t.src)
		goto nomem;
	while ((open = strstr(p, "{{"))) {
		const char *a = open + 2, *close, *b;
		char name[TFIELD_MAXLEN + 1];
		size_t n;
		int f;

		if (open > p && seg_add(&t, -1, p, (size_t)(open - p)) < 0)
			goto nomem;
		close = strstr(a, "}}");
		if (!close) {
			msg = "\"{{\" without a closing \"}}\"";
			off = (size_t)(open - s);
			goto fail;
		}
		while (a < close && (*a == ' ' || *a == '\t'))
			a++;
		b = close;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		n = (size_t)(b - a);
		off = (size_t)(a - s);
		if (!n) {
			msg = "empty field in \"{{ }}\"";
			off = (size_t)(open - s);
			goto fail;
		}
		if (n > TFIELD_MAXLEN) {
			msg = "unknown template field";
			goto fail;
		}
		memcpy(name, a, n);
		name[n] = 0;
		f = tsg_tfield_parse(name);
		if (f < 0) {
			msg = strncmp(name, "labels.", 7) ? "unknown template field"
							  : "bad label name in template field";
			goto fail;
		}
		if (seg_add(&t, f, f == TSG_TF_LABEL ? name + 7 : NULL,
			    f == TSG_TF_LABEL ? n - 7 : 0) < 0)
			goto nomem;
		t.fields_used |= 1u << f;
		if (f == TSG_TF_LABEL && label_add(&t, name + 7) < 0)
			goto nomem;
		p = close + 2;
	}
	if (*p && seg_add(&t, -1, p, strlen(p)) < 0)
		goto nomem;
	*out = t;
	return 0;
nomem:
	msg = "out of memory";
	r = -ENOMEM;
fail:
	tsg_template_fini(&t);
	if (err_off)
		*err_off = off;
	if (err_msg)
		*err_msg = msg;
	return r;
}
