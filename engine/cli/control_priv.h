/* SPDX-License-Identifier: MIT */
/* tsguard: the control socket's replies (control_reply.c), each a header
 * line and a body, malloc'd (NULL on ENOMEM). */
#ifndef TSG_CONTROL_PRIV_H
#define TSG_CONTROL_PRIV_H

#include "control.h"

char *tsg_ctl_error_reply(const char *msg);
char *tsg_ctl_status_reply(const struct tsg_control_ops *ops, const struct tsg_control_stats *st,
			   bool json);
char *tsg_ctl_alerts_reply(const struct tsg_control_ops *ops, bool json);
char *tsg_ctl_reload_reply(const struct tsg_control_ops *ops, bool json);

#endif
