/* SPDX-License-Identifier: MIT */
/*
 * tsguard: load diagnostics ("FILE:LINE:COL: error: ..."), the nearest-word
 * helper behind "did you mean", and severity names.
 */
#include "ruleset.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

/* At most this many messages are kept; the counters keep counting. */
#define TSG_DIAGS_MAX 500

void tsg_diags_init(struct tsg_diags *d)
{
	memset(d, 0, sizeof(*d));
}

void tsg_diags_fini(struct tsg_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->msg[i]);
	free(d->msg);
	memset(d, 0, sizeof(*d));
}

static void diag_push(struct tsg_diags *d, char *m)
{
	if (d->n >= TSG_DIAGS_MAX) {
		free(m);
		return;
	}
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		char **nm = realloc(d->msg, ncap * sizeof(*nm));

		if (!nm) {
			free(m);
			return;
		}
		d->msg = nm;
		d->cap = ncap;
	}
	d->msg[d->n++] = m;
}

static void diag_vadd(struct tsg_diags *d, const char *kind, const char *file,
		      int line, int col, const char *fmt, va_list ap)
{
	char loc[512], *body = NULL, *m = NULL;

	if (!d)
		return;
	if (!file)
		loc[0] = 0;
	else if (line > 0 && col > 0)
		snprintf(loc, sizeof(loc), "%s:%d:%d: ", file, line, col);
	else if (line > 0)
		snprintf(loc, sizeof(loc), "%s:%d: ", file, line);
	else
		snprintf(loc, sizeof(loc), "%s: ", file);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	if (asprintf(&m, "%s%s: %s", loc, kind, body ? body : "(out of memory)") < 0)
		m = NULL;
	free(body);
	if (m)
		diag_push(d, m);
}

void tsg_diag_vadd(struct tsg_diags *d, bool error, const char *file, int line, int col,
		   const char *fmt, va_list ap)
{
	if (!d)
		return;
	if (error)
		d->nerrors++;
	else
		d->nwarnings++;
	diag_vadd(d, error ? "error" : "warning", file, line, col, fmt, ap);
}

void tsg_diag_error(struct tsg_diags *d, const char *file, int line, int col,
		    const char *fmt, ...)
{
	TSG_VA_CALL(fmt, tsg_diag_vadd(d, true, file, line, col, fmt, ap));
}

void tsg_diag_warn(struct tsg_diags *d, const char *file, int line, int col,
		   const char *fmt, ...)
{
	TSG_VA_CALL(fmt, tsg_diag_vadd(d, false, file, line, col, fmt, ap));
}

void tsg_diags_print(const struct tsg_diags *d, FILE *out)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		fprintf(out, "%s\n", d->msg[i]);
	if (d->nerrors + d->nwarnings > d->n)
		fprintf(out, "(%zu more messages not shown)\n",
			d->nerrors + d->nwarnings - d->n);
}

void tsg_diags_flush(struct tsg_diags *d, FILE *out)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		fprintf(out, "%s\n", d->msg[i]);
		free(d->msg[i]);
	}
	d->n = 0;
}

/* ---- nearest word ------------------------------------------------------ */

#define NEAR_MAXLEN 64

/* Optimal string alignment distance (Levenshtein plus adjacent swaps),
 * case-insensitive. Words longer than NEAR_MAXLEN are "far". */
static int osa_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int d[NEAR_MAXLEN + 1][NEAR_MAXLEN + 1];

	if (la > NEAR_MAXLEN || lb > NEAR_MAXLEN)
		return 1000;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			int cost = ca != cb;
			int v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

static bool is_prefix_ci(const char *p, const char *s)
{
	size_t n = strlen(p);

	return n <= strlen(s) && !strncasecmp(p, s, n);
}

/*
 * The candidate nearest to `word`: edit distance at most 2 (and less than the
 * word's length, so that a two-letter word does not "resemble" everything),
 * or, for words of 3+ characters, one being a prefix of the other. Ties go to
 * the earlier candidate. An exact (case-insensitive) match returns itself.
 */
const char *tsg_nearest_word(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	int best_score = 1000;
	size_t wl;

	if (!word || !candidates)
		return NULL;
	wl = strlen(word);
	if (!wl)
		return NULL;
	for (size_t i = 0; candidates[i]; i++) {
		const char *c = candidates[i];
		int dist = osa_distance(word, c), score = 1000;

		if (dist <= 2 && (size_t)dist < wl)
			score = dist;
		else if (wl >= 3 && strlen(c) >= 3 &&
			 (is_prefix_ci(word, c) || is_prefix_ci(c, word)))
			score = 3;
		if (score < best_score) {
			best_score = score;
			best = c;
		}
	}
	return best;
}

/* ---- severities -------------------------------------------------------- */

static const char *const sev_names[] = {
	[LOG_EMERG] = "emergency", [LOG_ALERT] = "alert",
	[LOG_CRIT] = "critical",   [LOG_ERR] = "error",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",	   [LOG_DEBUG] = "debug",
};

const char *tsg_severity_name(int sev)
{
	if (sev < 0 || sev > LOG_DEBUG)
		return NULL;
	return sev_names[sev];
}

/* The names of docs/rules.md, plus the syslog abbreviations (emerg crit err warn). */
int tsg_severity_parse(const char *s)
{
	static const struct {
		const char *name;
		int sev;
	} alias[] = {
		{ "emerg", LOG_EMERG }, { "crit", LOG_CRIT },
		{ "err", LOG_ERR },	{ "warn", LOG_WARNING },
	};

	if (!s)
		return -EINVAL;
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (!strcasecmp(s, sev_names[i]))
			return i;
	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (!strcasecmp(s, alias[i].name))
			return alias[i].sev;
	return -EINVAL;
}
