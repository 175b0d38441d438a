/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the alert (notification) object and its renderings: template
 * fields, the JSON object of rules.md, the text line.
 */
#ifndef TSG_ALERT_H
#define TSG_ALERT_H

#include "ruleset.h"
#include <jansson.h>

enum tsg_status { TSG_FIRING = 0, TSG_RESOLVED };

struct tsg_alert {
	const struct tsg_rule *rule;
	const struct tsg_ruleset *rs; /* the rule's set (action names) */
	int status;              /* enum tsg_status */
	uint64_t ts_ns;          /* event clock */
	int64_t wall_ns;         /* CLOCK_REALTIME of the notification */
	struct tsg_sockinfo info;/* the socket's fields, or the key fields (count/rate) */
	uint8_t state, from, to; /* TSG_STATE_NONE when not applicable */
	bool has_duration;
	uint64_t duration_ns;
	bool has_count;
	uint64_t count;
	bool has_rate;
	double rate;             /* per second over the window */
	uint64_t suppressed;     /* notifications suppressed by cooldown since the last one */
	bool key_is_sock;        /* key is {"sock": ...}; else the `by` fields in info */
	/* the socket's id (tsg_event.sk): live, its kernel socket cookie, which
	 * the destroy action passes to the kernel; in replay, the id of the
	 * event file's "sk" */
	uint64_t sk;
	const char *host;
	bool dry_run;
	bool has_queue;          /* queue rules: the listener's last sample */
	struct tsg_queue_sample q;
};

const char *tsg_status_name(int st);

/*
 * One template field as text. `label` names the label for TSG_TF_LABEL.
 * Returns 0, or -ENOENT when the alert does not have the field (renders "").
 */
int tsg_alert_field(const struct tsg_alert *a, int field, const char *label, char *buf,
		    size_t len);
/* "10.0.0.2:50000-10.0.0.9:443" or "comm=curl,rport=443" */
const char *tsg_alert_key_string(const struct tsg_alert *a, char *buf, size_t len);
/* Renders a template; output truncated to len-1. Returns the full length. */
size_t tsg_template_render(const struct tsg_template *t, const struct tsg_alert *a, char *buf,
			   size_t len);
/* The rule's summary rendered. */
const char *tsg_alert_summary(const struct tsg_alert *a, char *buf, size_t len);
/* The alert object of rules.md (new reference). `actions` listed from the rule. */
json_t *tsg_alert_to_json(const struct tsg_alert *a);
/* Flags for json_dumps of alert objects: compact, 15 significant digits for
 * reals (so ts 1234.512 prints as 1234.512). */
#define TSG_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* The alert object as one compact JSON line (malloc'd), NULL on ENOMEM. */
char *tsg_alert_json_dumps(const struct tsg_alert *a);
/* One readable line, no newline. */
const char *tsg_alert_to_text(const struct tsg_alert *a, char *buf, size_t len);
/* ISO 8601 UTC with milliseconds, "2026-11-27T10:00:00.512Z"; buf >= 32. */
const char *tsg_format_time(int64_t wall_ns, char *buf, size_t len);
/* This host's name (cached). */
const char *tsg_hostname(void);

#endif
