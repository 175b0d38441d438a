/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_level = LOG_INFO;

void tsg_log_set_level(int level)
{
	log_level = level;
}

int tsg_log_get_level(void)
{
	return log_level;
}

void tsg_log(int level, const char *fmt, ...)
{
	static const char *const names[] = { "emergency", "alert", "critical", "error",
					     "warning",	  "notice", "info",	"debug" };
	char buf[2048];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "tsguard: %s: %s\n", names[level & 7], buf);
}
