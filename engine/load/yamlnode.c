/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the loader's small helpers (engine/load/yamlnode.h, load_priv.h):
 * nodes and their marks, diagnostics at a node, "did you mean", scalars,
 * names, numbers, booleans, durations, checked mappings, and walking the
 * sequences of every file. load.c reads the files; parse_*.c read what they
 * hold.
 */
#include "load_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

yaml_node_t *ld_node(const struct ld_file *f, int idx)
{
	return yaml_document_get_node((yaml_document_t *)&f->doc, idx);
}

void ld_pos(const yaml_node_t *n, int *line, int *col)
{
	*line = n ? (int)n->start_mark.line + 1 : 0;
	*col = n ? (int)n->start_mark.column + 1 : 0;
}

static void ld_vdiag(struct ld *L, bool error, const struct ld_file *f, const yaml_node_t *n,
		     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void ld_vdiag(struct ld *L, bool error, const struct ld_file *f, const yaml_node_t *n,
		     const char *fmt, va_list ap)
{
	int line, col;

	ld_pos(n, &line, &col);
	tsg_diag_vadd(L->d, error, f ? f->path : NULL, line, col, fmt, ap);
}

void ld_err(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
	    const char *fmt, ...)
{
	TSG_VA_CALL(fmt, ld_vdiag(L, true, f, n, fmt, ap));
}

int ld_each_item(struct ld *L, size_t section, const char *what,
		 int (*fn)(struct ld *L, struct ld_file *f, yaml_node_t *n))
{
	for (size_t fi = 0; fi < L->nfiles; fi++) {
		struct ld_file *f = &L->files[fi];
		yaml_node_t *n = *(yaml_node_t **)((char *)f + section);

		if (!n || ld_is_null(n))
			continue;
		if (n->type != YAML_SEQUENCE_NODE) {
			ld_err(L, f, n, "expected a list of %s (- name: ...) for %s", what, what);
			continue;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++)
			if (fn(L, f, ld_node(f, *i)) == -ENOMEM) {
				L->oom = true;
				return -ENOMEM;
			}
	}
	return 0;
}

void ld_warn(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
	     const char *fmt, ...)
{
	TSG_VA_CALL(fmt, ld_vdiag(L, false, f, n, fmt, ap));
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
