/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the rule loader (docs/rules.md): files and directories, YAML with
 * marks (libyaml document API), lists, actions, rules, and every check of
 * the rule language. All errors are collected; a set with any error is
 * rejected whole.
 *
 * Order of work: read every file (permissions, YAML), then the lists of all
 * files, then the actions of all files, then the rules of all files, so that
 * any file may refer to what any other file defines.
 */
#include "load_priv.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MAX_FILE_SIZE (16u << 20)
#define MAX_FILES 4096

/* ---- small helpers ------------------------------------------------------- */

yaml_node_t *ld_node(const struct ld_file *f, int idx)
{
	return yaml_document_get_node((yaml_document_t *)&f->doc, idx);
}

void ld_pos(const yaml_node_t *n, int *line, int *col)
{
	*line = n ? (int)n->start_mark.line + 1 : 0;
	*col = n ? (int)n->start_mark.column + 1 : 0;
}

void ld_err(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
	    const char *fmt, ...)
{
	va_list ap;
	int line, col;

	ld_pos(n, &line, &col);
	va_start(ap, fmt);
	tsg_diag_vadd(L->d, true, f ? f->path : NULL, line, col, fmt, ap);
	va_end(ap);
}

void ld_warn(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
	     const char *fmt, ...)
{
	va_list ap;
	int line, col;

	ld_pos(n, &line, &col);
	va_start(ap, fmt);
	tsg_diag_vadd(L->d, false, f ? f->path : NULL, line, col, fmt, ap);
	va_end(ap);
}

/* Position of byte `off` of a scalar's value, where it can be told (one-line
 * plain or quoted scalars without escapes); else the scalar's start. */
void ld_off_pos(const yaml_node_t *n, size_t off, int *line, int *col)
{
	size_t len, width;

	ld_pos(n, line, col);
	if (!n || n->type != YAML_SCALAR_NODE || n->start_mark.line != n->end_mark.line)
		return;
	len = n->data.scalar.length;
	width = n->end_mark.column - n->start_mark.column;
	switch (n->data.scalar.style) {
	case YAML_PLAIN_SCALAR_STYLE:
		if (width == len)
			*col += (int)off;
		break;
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		if (width == len + 2)
			*col += 1 + (int)off;
		break;
	default:
		break;
	}
}

void ld_err_at(struct ld *L, const struct ld_file *f, const yaml_node_t *n, size_t off,
	       const char *fmt, ...)
{
	char *m = NULL;
	va_list ap;
	int line, col;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	ld_off_pos(n, off, &line, &col);
	tsg_diag_error(L->d, f ? f->path : NULL, line, col, "%s", m ? m : "out of memory");
	free(m);
}

/* " (did you mean "X"?)" or "" */
const char *ld_dym(const char *word, const char *const *cands, char *buf, size_t len)
{
	const char *w = tsg_nearest_word(word, cands);

	if (!w || !strcmp(w, word)) {
		buf[0] = 0;
		return buf;
	}
	snprintf(buf, len, " (did you mean \"%s\"?)", w);
	return buf;
}

/* "a, b or c" */
const char *ld_join(const char *const *words, char *buf, size_t len)
{
	size_t n = 0, o = 0;

	while (words[n])
		n++;
	buf[0] = 0;
	for (size_t i = 0; i < n && o < len; i++) {
		const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
		int w = snprintf(buf + o, len - o, "%s%s", sep, words[i]);

		if (w < 0)
			break;
		o += (size_t)w;
	}
	return buf;
}

bool ld_is_null(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (n->data.scalar.length == 0 || !strcmp((const char *)n->data.scalar.value, "~") ||
		!strcmp((const char *)n->data.scalar.value, "null"));
}

const char *ld_str(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

const char *ld_scalar(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
		      const char *what)
{
	if (!ld_str(n) || ld_is_null(n)) {
		ld_err(L, f, n, "expected %s", what);
		return NULL;
	}
	return ld_str(n);
}

bool ld_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > TSG_NAME_MAX)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

const char *ld_name(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
		    const char *what)
{
	char w[96];
	const char *s;

	snprintf(w, sizeof(w), "a name for %s", what);
	s = ld_scalar(L, f, n, w);
	if (!s)
		return NULL;
	if (!ld_name_ok(s)) {
		ld_err(L, f, n,
		       "bad %s name \"%s\": expected [a-z0-9][a-z0-9_.-]*, at most %d characters",
		       what, s, TSG_NAME_MAX);
		return NULL;
	}
	return s;
}

int ld_uint(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *what,
	    uint64_t max, uint64_t *out)
{
	const char *s = ld_scalar(L, f, n, what);
	unsigned long long v;
	char *end;

	if (!s)
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v > max) {
		ld_err(L, f, n, "bad value \"%s\": expected %s (a whole number, 0 to %llu)", s,
		       what, (unsigned long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int ld_bool(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *what,
	    bool *out)
{
	const char *s = ld_scalar(L, f, n, what);

	if (!s)
		return -EINVAL;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		*out = false;
		return 0;
	}
	ld_err(L, f, n, "bad value \"%s\": expected %s (true or false)", s, what);
	return -EINVAL;
}

int ld_duration(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
		const char *what, bool positive, uint64_t *out)
{
	const char *s = ld_scalar(L, f, n, what);
	uint64_t v;

	if (!s)
		return -EINVAL;
	if (tsg_duration_parse(s, &v) < 0) {
		ld_err(L, f, n,
		       "bad duration \"%s\" for %s: expected a number with a unit ms, s, m or h (e.g. 500ms, 1.5s, 10m)",
		       s, what);
		return -EINVAL;
	}
	if (positive && !v) {
		ld_err(L, f, n, "bad duration \"%s\" for %s: must be more than 0", s, what);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/*
 * Checks a mapping against its allowed keys: unknown keys (with the nearest
 * one), duplicate keys, non-scalar keys. kn[i]/vn[i] get the key and value
 * node of keys[i] (NULL when absent). False when `n` is not a mapping.
 */
bool ld_map(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *what,
	    const char *const *keys, yaml_node_t **kn, yaml_node_t **vn)
{
	size_t nk = 0;

	while (keys[nk])
		nk++;
	for (size_t i = 0; i < nk; i++)
		kn[i] = vn[i] = NULL;
	if (!n || n->type != YAML_MAPPING_NODE) {
		ld_err(L, f, n, "expected a mapping for %s", what);
		return false;
	}
	LD_FOR_PAIRS(n, p) {
		yaml_node_t *k = ld_node(f, p->key), *v = ld_node(f, p->value);
		const char *ks = ld_str(k);
		size_t i;

		if (!ks) {
			ld_err(L, f, k, "expected a field name in %s", what);
			continue;
		}
		for (i = 0; i < nk; i++)
			if (!strcmp(ks, keys[i]))
				break;
		if (i == nk) {
			char dym[96], list[512];

			ld_err(L, f, k, "unknown field \"%s\" in %s (expected %s)%s", ks, what,
			       ld_join(keys, list, sizeof(list)),
			       ld_dym(ks, keys, dym, sizeof(dym)));
			continue;
		}
		if (kn[i]) {
			ld_err(L, f, k, "duplicate field \"%s\" in %s (first at line %d)", ks,
			       what, (int)kn[i]->start_mark.line + 1);
			continue;
		}
		kn[i] = k;
		vn[i] = v;
	}
	return true;
}

/* Keys of `keys` that the mapping n lacks but that one of its unknown keys is
 * nearest to (tsg_nearest_word): bit i for keys[i] (i < 64). Reports nothing;
 * a caller uses it to leave out what only follows from a misspelt key. */
uint64_t ld_guess(const struct ld_file *f, const yaml_node_t *n, const char *const *keys)
{
	uint64_t present = 0, near = 0;

	if (!n || n->type != YAML_MAPPING_NODE)
		return 0;
	LD_FOR_PAIRS(n, p) {
		const char *ks = ld_str(ld_node(f, p->key)), *w;
		size_t i;

		if (!ks)
			continue;
		for (i = 0; keys[i] && i < 64; i++)
			if (!strcmp(ks, keys[i]))
				break;
		if (keys[i] && i < 64) {
			present |= 1ull << i;
			continue;
		}
		w = tsg_nearest_word(ks, keys);
		for (i = 0; w && keys[i] && i < 64; i++)
			if (keys[i] == w)
				near |= 1ull << i;
	}
	return near & ~present;
}

/* ---- files ------------------------------------------------------------- */

/* On a read-only mount (a Kubernetes ConfigMap volume, for one) mode bits
 * do not let anyone write. */
static bool on_readonly_fs(const char *path)
{
	struct statvfs sv;

	return statvfs(path, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

static void check_perms(struct ld *L, const char *path, const struct stat *st)
{
	bool wr = (st->st_mode & (S_IWGRP | S_IWOTH)) && !on_readonly_fs(path);

	if (L->as_root) {
		if (wr)
			tsg_diag_error(L->d, path, 0, 0,
				       "%s is writable by group or others (mode %04o); tsguard runs its commands as root, refusing it",
				       path, (unsigned)(st->st_mode & 07777));
		if (st->st_uid != 0)
			tsg_diag_error(L->d, path, 0, 0,
				       "%s is owned by uid %u, not root; tsguard runs its commands as root, refusing it",
				       path, (unsigned)st->st_uid);
	} else if (wr) {
		tsg_diag_warn(L->d, path, 0, 0,
			      "%s is writable by group or others (mode %04o); running as root would refuse it",
			      path, (unsigned)(st->st_mode & 07777));
	}
}

/*
 * As root, the directories above a rule path matter too: whoever can write
 * one of them can put another file in the rule file's place. Each must be
 * owned by root and not writable by group or others, unless it is sticky
 * (like /tmp, where only a file's owner may rename it).
 */
static void check_ancestors(struct ld *L, const char *path)
{
	char *real = realpath(path, NULL), *slash;

	if (!L->as_root || !real)
		goto out;
	while ((slash = strrchr(real, '/'))) {
		struct stat st;

		if (slash == real)
			slash[1] = 0; /* "/" itself */
		else
			*slash = 0;
		if (stat(real, &st) < 0)
			break;
		if (st.st_uid != 0)
			tsg_diag_error(L->d, path, 0, 0,
				       "the directory %s above it is owned by uid %u, not root: its "
				       "owner could replace these rules, which run commands as root; "
				       "refusing it",
				       real, (unsigned)st.st_uid);
		else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX) &&
			 !on_readonly_fs(real))
			tsg_diag_error(L->d, path, 0, 0,
				       "the directory %s above it is writable by group or others "
				       "(mode %04o): they could replace these rules, which run "
				       "commands as root; refusing it",
				       real, (unsigned)(st.st_mode & 07777));
		if (!strcmp(real, "/"))
			break;
	}
out:
	free(real);
}

static void io_error(struct ld *L, const char *path, int err, const char *what)
{
	tsg_diag_error(L->d, path, 0, 0, "%s: %s", what, strerror(err));
	if (!L->io_err)
		L->io_err = -err;
}

static int add_file(struct ld *L, const char *path, const struct stat *st)
{
	struct ld_file *nf;

	for (size_t i = 0; i < L->nfiles; i++) {
		if (L->files[i].dev == st->st_dev && L->files[i].ino == st->st_ino) {
			tsg_diag_warn(L->d, path, 0, 0, "already loaded as %s; skipped",
				      L->files[i].path);
			return 0;
		}
	}
	if (L->nfiles >= MAX_FILES) {
		tsg_diag_error(L->d, path, 0, 0, "too many rule files (at most %d)", MAX_FILES);
		return -E2BIG;
	}
	nf = realloc(L->files, (L->nfiles + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	L->files = nf;
	nf = &L->files[L->nfiles];
	memset(nf, 0, sizeof(*nf));
	nf->path = strdup(path);
	if (!nf->path)
		return -ENOMEM;
	nf->dev = st->st_dev;
	nf->ino = st->st_ino;
	L->nfiles++;
	return 0;
}

static int yaml_file_filter(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	if (de->d_name[0] == '.')
		return 0;
	return (n > 5 && !strcmp(de->d_name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(de->d_name + n - 4, ".yml"));
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int add_path(struct ld *L, const char *path)
{
	struct dirent **ents = NULL;
	struct stat st;
	int n, r = 0, found = 0;

	if (stat(path, &st) < 0) {
		io_error(L, path, errno, "cannot open rules");
		return 0;
	}
	check_perms(L, path, &st);
	check_ancestors(L, path);
	if (!S_ISDIR(st.st_mode)) {
		if (!S_ISREG(st.st_mode)) {
			tsg_diag_error(L->d, path, 0, 0, "not a regular file or a directory");
			return 0;
		}
		return add_file(L, path, &st);
	}
	n = scandir(path, &ents, yaml_file_filter, name_cmp);
	if (n < 0) {
		io_error(L, path, errno, "cannot read directory");
		return 0;
	}
	for (int i = 0; i < n; i++) {
		char *fp = NULL;
		struct stat fst;
		size_t pl = strlen(path);

		if (r >= 0 &&
		    asprintf(&fp, "%s%s%s", path, pl && path[pl - 1] == '/' ? "" : "/",
			     ents[i]->d_name) >= 0) {
			if (stat(fp, &fst) < 0) {
				io_error(L, fp, errno, "cannot open rules");
			} else if (S_ISREG(fst.st_mode)) {
				check_perms(L, fp, &fst);
				r = add_file(L, fp, &fst);
				found++;
			}
			free(fp);
		} else if (r >= 0) {
			r = -ENOMEM;
		}
		free(ents[i]);
	}
	free(ents);
	if (r >= 0 && !found)
		tsg_diag_warn(L->d, path, 0, 0, "no *.yaml or *.yml files in this directory");
	return r;
}

/* Any explicit tag is refused; the usual cause is an unquoted "!X". */
static void check_tags(struct ld *L, struct ld_file *f)
{
	for (yaml_node_t *n = f->doc.nodes.start; n < f->doc.nodes.top; n++) {
		const char *tag = (const char *)n->tag;

		if (tag && strncmp(tag, "tag:yaml.org,2002:", 18))
			ld_err(L, f, n,
			       "YAML tag \"%s\" is not supported (an exclusion must be quoted: \"%s\")",
			       tag, tag);
	}
}

/* Deepest nesting of mappings and sequences a rule file may have. */
#define MAX_YAML_DEPTH 64

/*
 * Streams the file's events once to bound its nesting before it is loaded:
 * libyaml's scanner costs O(depth) per token, so a file of nested brackets
 * would otherwise take minutes. Returns false (with an error) when too deep;
 * syntax errors are left to the load that follows.
 */
static bool depth_ok(struct ld *L, struct ld_file *f, FILE *fp)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0;
	bool ok = true, done = false;

	if (!yaml_parser_initialize(&p))
		return true;
	yaml_parser_set_input_file(&p, fp);
	while (!done && yaml_parser_parse(&p, &ev)) {
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (++depth > MAX_YAML_DEPTH) {
				tsg_diag_error(L->d, f->path, (int)ev.start_mark.line + 1,
					       (int)ev.start_mark.column + 1,
					       "nested deeper than %d levels", MAX_YAML_DEPTH);
				ok = false;
				done = true;
			}
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	rewind(fp);
	return ok;
}

static void yaml_problem(struct ld *L, const struct ld_file *f, const yaml_parser_t *p)
{
	tsg_diag_error(L->d, f->path, (int)p->problem_mark.line + 1,
		       (int)p->problem_mark.column + 1, "YAML: %s%s%s",
		       p->problem ? p->problem : "syntax error", p->context ? " " : "",
		       p->context ? p->context : "");
}

/* The document of an open file: f->loaded when there is one. */
static int load_doc(struct ld *L, struct ld_file *f, FILE *fp)
{
	yaml_parser_t parser;
	yaml_document_t extra;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&parser, fp);
	if (!yaml_parser_load(&parser, &f->doc)) {
		yaml_problem(L, f, &parser);
		yaml_parser_delete(&parser);
		return 0;
	}
	f->loaded = true;
	if (yaml_parser_load(&parser, &extra)) {
		yaml_node_t *root = yaml_document_get_root_node(&extra);

		if (root)
			ld_err(L, f, root, "a second YAML document: expected one document per file");
		yaml_document_delete(&extra);
	} else {
		yaml_problem(L, f, &parser);
	}
	yaml_parser_delete(&parser);
	return 0;
}

int ld_read_yaml(struct ld *L, struct ld_file *f, const char *what)
{
	struct stat st;
	FILE *fp;
	int r = 0;

	fp = fopen(f->path, "rb");
	if (!fp) {
		io_error(L, f->path, errno, what);
		return 0;
	}
	if (fstat(fileno(fp), &st) == 0 && st.st_size > (off_t)MAX_FILE_SIZE)
		tsg_diag_error(L->d, f->path, 0, 0, "file too large (at most %u MiB)",
			       MAX_FILE_SIZE >> 20);
	else if (depth_ok(L, f, fp))
		r = load_doc(L, f, fp);
	fclose(fp);
	return r;
}

static int read_file(struct ld *L, struct ld_file *f)
{
	int r = ld_read_yaml(L, f, "cannot open rules");

	if (f->loaded)
		check_tags(L, f);
	return r;
}

static const char *const top_keys[] = { "lists", "actions", "rules", NULL };

static void read_top(struct ld *L, struct ld_file *f)
{
	yaml_node_t *root = yaml_document_get_root_node(&f->doc);
	yaml_node_t *kn[3], *vn[3];

	if (!root || ld_is_null(root))
		return; /* an empty file is an empty rule set */
	if (!ld_map(L, f, root, "the top level of a rule file", top_keys, kn, vn))
		return;
	f->lists = vn[0];
	f->actions = vn[1];
	f->rules = vn[2];
}

/* ---- the ruleset ------------------------------------------------------- */

void tsg_action_def_fini(struct tsg_action_def *a)
{
	free(a->name);
	switch (a->type) {
	case TSG_ACT_SYSLOG:
		free(a->syslog.ident);
		break;
	case TSG_ACT_EXEC:
		for (size_t i = 0; i < a->exec.argc; i++)
			tsg_template_fini(&a->exec.argv[i]);
		free(a->exec.argv);
		free(a->exec.user);
		break;
	case TSG_ACT_WEBHOOK:
		for (size_t i = 0; i < a->webhook.nurls; i++)
			free(a->webhook.urls[i]);
		free(a->webhook.urls);
		tsg_template_fini(&a->webhook.body);
		for (size_t i = 0; i < a->webhook.nheaders; i++) {
			free(a->webhook.headers[i].name);
			tsg_template_fini(&a->webhook.headers[i].value);
		}
		free(a->webhook.headers);
		break;
	}
	for (size_t i = 0; i < a->nlabels_used; i++)
		free(a->labels_used[i]);
	free(a->labels_used);
	memset(a, 0, sizeof(*a));
}

void tsg_rule_fini(struct tsg_rule *r)
{
	free(r->name);
	free(r->description);
	tsg_template_fini(&r->summary);
	for (size_t i = 0; i < r->nlabels; i++) {
		free(r->labels[i].name);
		free(r->labels[i].value);
	}
	free(r->labels);
	tsg_match_fini(&r->match);
	free(r->actions);
	memset(r, 0, sizeof(*r));
}

void tsg_ruleset_free(struct tsg_ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->nrules; i++)
		tsg_rule_fini(&rs->rules[i]);
	free(rs->rules);
	for (size_t i = 0; i < rs->nactions; i++)
		tsg_action_def_fini(&rs->actions[i]);
	free(rs->actions);
	for (size_t i = 0; i < rs->nfiles; i++)
		free(rs->files[i]);
	free(rs->files);
	free(rs);
}

uint32_t tsg_rule_fields_avail(const struct tsg_rule *r)
{
	uint32_t f = 1u << TSG_TF_RULE | 1u << TSG_TF_SEVERITY | 1u << TSG_TF_STATUS |
		     1u << TSG_TF_SUMMARY | 1u << TSG_TF_HOST | 1u << TSG_TF_TIME |
		     1u << TSG_TF_KEY | 1u << TSG_TF_LABEL;
	uint32_t sock = 0;

	for (int sf = 0; sf < TSG_SF_N; sf++)
		if (tsg_sfield_to_tfield(sf) >= 0)
			sock |= 1u << tsg_sfield_to_tfield(sf);
	switch (r->kind) {
	case TSG_KIND_TRANSITION:
		f |= sock | 1u << TSG_TF_STATE | 1u << TSG_TF_FROM | 1u << TSG_TF_TO |
		     1u << TSG_TF_DURATION | 1u << TSG_TF_DURATION_MS;
		break;
	case TSG_KIND_TIME:
		f |= sock | 1u << TSG_TF_STATE | 1u << TSG_TF_DURATION |
		     1u << TSG_TF_DURATION_MS;
		break;
	case TSG_KIND_COUNT:
	case TSG_KIND_RATE:
		f |= 1u << TSG_TF_COUNT;
		if (r->kind == TSG_KIND_COUNT)
			f |= 1u << TSG_TF_STATE;
		else
			f |= 1u << TSG_TF_RATE | 1u << TSG_TF_FROM | 1u << TSG_TF_TO;
		for (int sf = 0; sf < TSG_SF_N; sf++)
			if (r->by & TSG_HAVE(sf))
				f |= 1u << tsg_sfield_to_tfield(sf);
		break;
	case TSG_KIND_QUEUE:
		f |= sock | 1u << TSG_TF_STATE | 1u << TSG_TF_QUEUE | 1u << TSG_TF_BACKLOG |
		     1u << TSG_TF_DROPS;
		break;
	}
	return f;
}

/* ---- entry point ------------------------------------------------------- */

struct dkey {
	long file, line, col;
};

static struct dkey diag_key(const struct ld *L, const char *m)
{
	struct dkey k = { -1, 0, 0 };

	for (size_t i = 0; i < L->nfiles; i++) {
		size_t n = strlen(L->files[i].path);
		char *end;

		if (strncmp(m, L->files[i].path, n) || m[n] != ':')
			continue;
		k.file = (long)i;
		k.line = strtol(m + n + 1, &end, 10);
		if (end != m + n + 1 && *end == ':')
			k.col = strtol(end + 1, NULL, 10);
		break;
	}
	return k;
}

static bool dkey_less(struct dkey a, struct dkey b)
{
	if (a.file != b.file)
		return a.file < b.file;
	if (a.line != b.line)
		return a.line < b.line;
	return a.col < b.col;
}

/* The loader works in phases (lists, actions, rules); show the messages in
 * file order instead: by file, line, column (stable; file-less first). */
static void sort_diags(const struct ld *L, size_t from)
{
	struct tsg_diags *d = L->d;

	for (size_t i = from + 1; i < d->n; i++) {
		char *m = d->msg[i];
		struct dkey k = diag_key(L, m);
		size_t j = i;

		while (j > from && dkey_less(k, diag_key(L, d->msg[j - 1]))) {
			d->msg[j] = d->msg[j - 1];
			j--;
		}
		d->msg[j] = m;
	}
}

static void ld_fini(struct ld *L)
{
	for (size_t i = 0; i < L->nfiles; i++) {
		if (L->files[i].loaded)
			yaml_document_delete(&L->files[i].doc);
		free(L->files[i].path);
	}
	free(L->files);
	for (size_t i = 0; i < L->nlists; i++)
		free(L->lists[i].items);
	free(L->lists);
}

int tsg_ruleset_load(const char *const *paths, size_t npaths, bool as_root,
		     struct tsg_diags *diags, struct tsg_ruleset **out)
{
	struct ld L = { .d = diags, .as_root = as_root };
	struct tsg_diags local;
	size_t err0, msg0;
	int r = 0;

	if (!diags) {
		tsg_diags_init(&local);
		L.d = &local;
	}
	err0 = L.d->nerrors;
	msg0 = L.d->n;
	L.rs = calloc(1, sizeof(*L.rs));
	if (!L.rs)
		return -ENOMEM;
	for (size_t i = 0; i < npaths && r >= 0; i++)
		r = add_path(&L, paths[i]);
	if (r >= 0 && L.nfiles) {
		L.rs->files = calloc(L.nfiles, sizeof(char *));
		if (!L.rs->files)
			r = -ENOMEM;
	}
	for (size_t i = 0; i < L.nfiles && r >= 0; i++) {
		L.rs->files[i] = strdup(L.files[i].path);
		if (!L.rs->files[i]) {
			r = -ENOMEM;
			break;
		}
		L.rs->nfiles++;
		L.files[i].ipath = tsg_intern(L.files[i].path);
		if (!L.files[i].ipath)
			L.files[i].ipath = L.rs->files[i];
		r = read_file(&L, &L.files[i]);
		if (r >= 0 && L.files[i].loaded)
			read_top(&L, &L.files[i]);
	}
	if (r >= 0)
		r = ld_lists(&L);
	if (r >= 0)
		r = ld_actions(&L);
	if (r >= 0)
		r = ld_rules(&L);
	if (r >= 0 && L.oom)
		r = -ENOMEM;
	if (r >= 0 && L.d->nerrors > err0)
		r = L.io_err ? L.io_err : -EINVAL;
	sort_diags(&L, msg0);
	ld_fini(&L);
	if (!diags)
		tsg_diags_fini(&local);
	if (r < 0) {
		tsg_ruleset_free(L.rs);
		return r;
	}
	*out = L.rs;
	return 0;
}
