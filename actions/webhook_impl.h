/* SPDX-License-Identifier: MIT */
/*
 * tsguard: internals of the webhook action shared by webhook.c (delivery)
 * and webhook_fmt.c (headers, bodies, dry run). Not a public API.
 */
#ifndef TSG_WEBHOOK_IMPL_H
#define TSG_WEBHOOK_IMPL_H

#include "action_impl.h"

#include <curl/curl.h>

#define WH_DEFAULT_TIMEOUT (5 * TSG_NSEC_PER_SEC)
#define WH_RESP_KEEP	   200 /* bytes of a failed response kept for the log */

struct wh_dest;

/* One notification for one URL: owns every byte it needs. */
struct wh_job {
	struct tsg_act_job h; /* h.st: the action's counters */
	char *url;
	struct wh_dest *dest;
	char **headers; /* "Name: value", NULL-terminated */
	char *body;	/* json/template: at fire; alertmanager: per attempt */
	uint64_t timeout_ns;
	int retries, attempt;
	uint64_t next_at;
	struct tsg_act_stat *ust; /* its URL's counters (or NULL) */
	/* alertmanager */
	bool am, am_firing, am_tracked;
	bool resend;	  /* a send of an am_entry: clears its busy flag when finished */
	json_t *am_alert; /* {labels, annotations, startsAt} */
	char *am_id;	  /* action \x1f rule \x1f key */
	int64_t am_end_ns;
	/* transfer */
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char resp[WH_RESP_KEEP + 1];
	size_t resp_len;
	struct wh_job *next;
};

/* Per attempt timeout of `d` (its own or the default). */
uint64_t wh_timeout(const struct tsg_action_def *d);
/* "Name: value" per configured header plus a Content-Type (NULL-terminated). */
char **wh_headers(const struct tsg_action_def *d, const struct tsg_alert *a);
/* json or template body of one notification (malloc'd). */
char *wh_body(struct tsg_act_ctx *c, const struct tsg_action_def *d);
/* Alertmanager: {labels, annotations, startsAt} of one alert. */
json_t *wh_am_alert(const struct tsg_alert *a);
/* Alertmanager: the request body [alert + endsAt] (malloc'd). */
char *wh_am_body(const json_t *alert, bool resolved, int64_t end_ns, uint64_t resend_ns);
/* Alertmanager: the identity of an alert, "action \x1f rule \x1f key". */
char *wh_am_id(const char *action, const struct tsg_alert *a);

/* The job of one notification, for no URL yet (url ""). NULL on ENOMEM. */
struct wh_job *wh_job_new(struct tsg_act_ctx *c, const struct tsg_action_def *d,
			  struct tsg_act_stat *st);
/* Copies what a send needs: everything but the transfer and the destination. */
struct wh_job *wh_job_copy(const struct wh_job *j);
void wh_job_free(struct wh_job *j);

#endif
