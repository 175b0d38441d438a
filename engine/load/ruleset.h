/* SPDX-License-Identifier: MIT */
/*
 * tsguard: a loaded, validated rule set (docs/rules.md) and its loader.
 *
 * A ruleset is immutable once loaded. Lists are resolved into the match sets
 * at load time; templates are parsed and checked at load time.
 */
#ifndef TSG_RULESET_H
#define TSG_RULESET_H

#include "tsg.h"
#include <stdarg.h>
#include <stdio.h>

/* ---- diagnostics ----------------------------------------------------- */

struct tsg_diags {
	char **msg;      /* "FILE:LINE:COL: error: ..." or "...: warning: ..." */
	size_t n, cap;
	size_t nerrors, nwarnings;
};
void tsg_diags_init(struct tsg_diags *d);
void tsg_diags_fini(struct tsg_diags *d);
/* Appends "FILE:LINE:COL: error: <fmt>"; line/col 1-based (0: omitted). */
void tsg_diag_error(struct tsg_diags *d, const char *file, int line, int col,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void tsg_diag_warn(struct tsg_diags *d, const char *file, int line, int col,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same with a va_list: an error when `error`, else a warning. */
void tsg_diag_vadd(struct tsg_diags *d, bool error, const char *file, int line, int col,
		   const char *fmt, va_list ap);
void tsg_diags_print(const struct tsg_diags *d, FILE *out);
/* Prints the kept messages and drops them; the counts stay. */
void tsg_diags_flush(struct tsg_diags *d, FILE *out);

/* ---- templates --------------------------------------------------------- */

/* Template fields (docs/rules.md "Templates"). */
enum tsg_tfield {
	TSG_TF_RULE = 0,
	TSG_TF_SEVERITY,
	TSG_TF_STATUS,
	TSG_TF_SUMMARY,
	TSG_TF_HOST,
	TSG_TF_TIME,
	TSG_TF_COMM,
	TSG_TF_PID,
	TSG_TF_UID,
	TSG_TF_CGROUP,
	TSG_TF_FAMILY,
	TSG_TF_LADDR,
	TSG_TF_LPORT,
	TSG_TF_RADDR,
	TSG_TF_RPORT,
	TSG_TF_STATE,
	TSG_TF_FROM,
	TSG_TF_TO,
	TSG_TF_DURATION,
	TSG_TF_DURATION_MS,
	TSG_TF_COUNT,
	TSG_TF_RATE,
	TSG_TF_KEY,
	TSG_TF_NETNS,
	TSG_TF_NETNS_NAME,
	TSG_TF_CONTAINER,
	TSG_TF_POD,
	TSG_TF_LABEL, /* labels.NAME */
	TSG_TF_QUEUE, /* queue rules only: queue, backlog, drops */
	TSG_TF_BACKLOG,
	TSG_TF_DROPS,
	TSG_TF_N
};
const char *tsg_tfield_name(int f);
int tsg_tfield_parse(const char *s); /* "labels.x" -> TSG_TF_LABEL; else -EINVAL */

struct tsg_tseg {
	int field;  /* -1: literal text; else enum tsg_tfield */
	char *text; /* literal text, or the label NAME for TSG_TF_LABEL */
};

struct tsg_template {
	char *src;            /* as written */
	struct tsg_tseg *seg;
	size_t nseg;
	uint32_t fields_used; /* bit per enum tsg_tfield */
	char **labels_used;   /* label names referenced */
	size_t nlabels_used;
};

/* Parses "{{ field }}" templates. On error returns -EINVAL and sets *err_off
 * (byte offset in s) and *err_msg (static string). */
int tsg_template_parse(const char *s, struct tsg_template *out, size_t *err_off,
		       const char **err_msg);
void tsg_template_fini(struct tsg_template *t);

/* ---- match sets ------------------------------------------------------- */

struct tsg_portrange {
	uint16_t lo, hi;
	bool neg;
};
struct tsg_portset {
	struct tsg_portrange *v;
	size_t n; /* 0: field not given, matches anything */
};

struct tsg_cidr {
	uint8_t addr[16]; /* IPv6 or IPv4-mapped, host bits cleared */
	uint8_t plen;     /* 0..128 in the IPv6 space (IPv4 /24 -> 96+24) */
	bool neg;
};
struct tsg_cidrset {
	struct tsg_cidr *v;
	size_t n;
};

struct tsg_uidset {
	struct tsg_uiditem {
		uint32_t uid;
		bool neg;
	} *v;
	size_t n;
};

struct tsg_regex; /* PCRE2 code + per-comm result cache (match.c) */

struct tsg_strset {
	struct tsg_stritem {
		char *s;               /* exact string (comm) or path prefix (cgroup) */
		struct tsg_regex *re;  /* non-NULL: a {regex: ...} item, s = pattern */
		bool neg;
	} *v;
	size_t n;
};

/* netns: host and inode numbers resolve to an inode at load; a NAME resolves
 * to the inode of /run/netns/NAME at load (0 when there is none then) and
 * also matches a socket whose netns_name is NAME. */
struct tsg_netnsset {
	struct tsg_netnsitem {
		uint32_t inode; /* 0: a name that denoted no namespace at load */
		char *name;	/* netns: NAME; NULL for host and inode numbers */
		bool host;	/* written `host` */
		bool neg;
	} * v;
	size_t n;
};

/* container: ids or prefixes of ids (>= 12 characters); pod: UIDs. */
struct tsg_idset {
	struct tsg_iditem {
		char *s; /* NULL: `none` (no container, no pod) */
		bool neg;
	} * v;
	size_t n;
};

struct tsg_match {
	uint8_t family_mask; /* bit0 ipv4, bit1 ipv6; 0: any */
	struct tsg_portset lport, rport;
	struct tsg_cidrset laddr, raddr;
	struct tsg_strset comm;   /* exact or regex */
	struct tsg_uidset uid;
	struct tsg_strset cgroup; /* path prefixes */
	struct tsg_netnsset netns;
	struct tsg_idset container; /* id prefixes */
	struct tsg_idset pod;	    /* exact UIDs */
};

/* ---- actions ------------------------------------------------------------ */

enum tsg_action_type { TSG_ACT_SYSLOG = 0, TSG_ACT_EXEC, TSG_ACT_WEBHOOK, TSG_ACT_DESTROY, TSG_ACT_N };

/* "syslog", "exec", "webhook", "destroy" (the `type:` of an action); "?" out of range.
 * tsg_action_type_names is the same table, NULL-terminated. */
const char *tsg_action_type_name(int type);
extern const char *const tsg_action_type_names[TSG_ACT_N + 1];
enum tsg_syslog_format { TSG_SYSLOG_TEXT = 0, TSG_SYSLOG_JSON };
enum tsg_webhook_format { TSG_WH_JSON = 0, TSG_WH_TEMPLATE, TSG_WH_ALERTMANAGER };
/* A destroy action's max_per_minute: default and bound. */
#define TSG_DESTROY_PER_MINUTE 60
#define TSG_DESTROY_PER_MINUTE_MAX 100000
/* A webhook's `url:` list holds at most this many URLs. */
#define TSG_WH_MAX_URLS 16

struct tsg_header {
	char *name;
	struct tsg_template value;
};

struct tsg_action_def {
	char *name;
	int type; /* enum tsg_action_type */
	const char *file; /* interned */
	int line, col;
	bool builtin; /* the implicit `syslog` action */
	uint32_t fields_used; /* union of its templates' fields */
	char **labels_used;   /* union of its templates' labels */
	size_t nlabels_used;
	union {
		struct {
			int facility; /* LOG_DAEMON etc. (already shifted, as syslog.h) */
			char *ident;
			int format;   /* enum tsg_syslog_format */
		} syslog;
		struct {
			struct tsg_template *argv;
			size_t argc;
			uint64_t timeout_ns;
			int max_concurrent;
			char *user; /* NULL: run as tsguard's user */
		} exec;
		struct {
			char **urls; /* 1..TSG_WH_MAX_URLS, distinct; each gets every notification */
			size_t nurls;
			int format; /* enum tsg_webhook_format */
			struct tsg_template body; /* format template only */
			struct tsg_header *headers;
			size_t nheaders;
			uint64_t timeout_ns;
			int retries;
		} webhook;
		struct {
			uint32_t max_per_minute; /* 1..TSG_DESTROY_PER_MINUTE_MAX */
		} destroy;
	};
};

/* ---- rules ------------------------------------------------------------ */

enum tsg_kind {
	TSG_KIND_TRANSITION = 0,
	TSG_KIND_TIME,	/* state + longer_than */
	TSG_KIND_COUNT, /* state + count_above + by */
	TSG_KIND_RATE,	/* from/to + rate_above + per + by */
	TSG_KIND_QUEUE, /* state LISTEN + queue_above (N or P%); key: the listener */
	TSG_KIND_N
};

/* "transition", "time", "count", "rate" (metrics, messages); the title is
 * what --explain prints ("time in state"). "?" out of range. */
const char *tsg_kind_name(int kind);
const char *tsg_kind_title(int kind);

/* syslog facility name of LOG_DAEMON etc. ("daemon"); "?" when unknown. */
const char *tsg_facility_name(int facility);

/* syslog levels: LOG_EMERG=0 .. LOG_DEBUG=7 */
const char *tsg_severity_name(int sev);
int tsg_severity_parse(const char *s);

struct tsg_label {
	char *name;
	char *value;
};

struct tsg_rule {
	char *name;
	char *description;         /* may be NULL */
	struct tsg_template summary; /* default filled in by the loader */
	int severity;              /* LOG_* level */
	bool enabled;
	struct tsg_label *labels;
	size_t nlabels;
	struct tsg_match match;

	int kind; /* enum tsg_kind */
	tsg_statemask from, to; /* transition, rate: 0 = any */
	uint8_t state;          /* time, count */
	uint64_t longer_than_ns;
	uint64_t threshold;     /* count_above / rate_above */
	uint64_t resolve_below; /* count (default = threshold) */
	uint64_t per_ns;        /* rate */
	uint32_t by;            /* TSG_HAVE(TSG_SF_*) bits; 0: no by */
	uint64_t for_ns;        /* count, rate, queue */
	uint64_t cooldown_ns;

	size_t *actions; /* indices into the set's actions[] */
	size_t nactions;
	uint32_t fields_avail; /* template fields this rule's alerts have */
	/* queue: queue_above as a percentage of the backlog, in hundredths of a
	 * percent (1..10000); 0: queue_above is the number in `threshold` */
	uint32_t queue_pct_x100;

	const char *file; /* interned */
	int line, col;
	uint32_t index;    /* position in the set */
	uint64_t digest;   /* hash of the rule's effective definition (reload) */
};

struct tsg_ruleset {
	struct tsg_rule *rules;
	size_t nrules;
	struct tsg_action_def *actions;
	size_t nactions;
	char **files; /* every file loaded, in order */
	size_t nfiles;
};

/*
 * Loads every path (a file, or a directory of .yaml and .yml files in name order). On
 * any error nothing is returned: -EINVAL with diagnostics in *diags (which
 * may also hold warnings on success). -errno for I/O errors (also diagnosed).
 * `as_root`: refuse files/dirs that are not root-owned or are group/other
 * writable (error); when false they are only warned about.
 */
int tsg_ruleset_load(const char *const *paths, size_t npaths, bool as_root,
		     struct tsg_diags *diags, struct tsg_ruleset **out);
void tsg_ruleset_free(struct tsg_ruleset *rs);

/* The template field of a socket field and back; -EINVAL when there is none. */
int tsg_sfield_to_tfield(int sf);
int tsg_tfield_to_sfield(int tf);

/* Template fields a rule of this shape can have (bit per enum tsg_tfield). */
uint32_t tsg_rule_fields_avail(const struct tsg_rule *r);

/* Where `netns: NAME` is looked up ("/run/netns"; tests point it elsewhere);
 * the string must outlive the loads that use it. */
void tsg_load_set_netns_dir(const char *dir);

/* Nearest word from a NULL-terminated list (edit distance <= 2, or a prefix); NULL if none. */
const char *tsg_nearest_word(const char *word, const char *const *candidates);

#endif
