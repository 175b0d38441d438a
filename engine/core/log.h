/* SPDX-License-Identifier: MIT */
/*
 * tsguard: logging to standard error ("tsguard: LEVEL: message"), which the
 * service manager collects (journald). Levels follow syslog.
 */
#ifndef TSG_LOG_H
#define TSG_LOG_H

#include <syslog.h>

/* Messages above this level are dropped (default LOG_INFO; -v: LOG_DEBUG;
 * -q: LOG_WARNING). */
void tsg_log_set_level(int level);
int tsg_log_get_level(void);
void tsg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) tsg_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) tsg_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) tsg_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) tsg_log(LOG_DEBUG, __VA_ARGS__)
/* log_warn while the bool lvalue flag is false, and set it: once per flag */
#define log_warn_once(flag, ...)                                                                   \
	do {                                                                                       \
		if (!(flag)) {                                                                     \
			(flag) = true;                                                             \
			log_warn(__VA_ARGS__);                                                     \
		}                                                                                  \
	} while (0)

#endif
