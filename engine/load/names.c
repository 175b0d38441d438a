/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the one table of each name of the rule set: rule kinds, action
 * types, and the socket fields that are template fields (docs/rules.md).
 */
#include "ruleset.h"

#include <errno.h>

static const struct {
	const char *name, *title;
} kinds[TSG_KIND_N] = {
	[TSG_KIND_TRANSITION] = { "transition", "transition" },
	[TSG_KIND_TIME] = { "time", "time in state" },
	[TSG_KIND_COUNT] = { "count", "count" },
	[TSG_KIND_RATE] = { "rate", "rate" },
	[TSG_KIND_QUEUE] = { "queue", "accept queue" },
};

const char *tsg_kind_name(int kind)
{
	return kind >= 0 && kind < TSG_KIND_N ? kinds[kind].name : "?";
}

const char *tsg_kind_title(int kind)
{
	return kind >= 0 && kind < TSG_KIND_N ? kinds[kind].title : "?";
}

const char *const tsg_action_type_names[TSG_ACT_N + 1] = {
	[TSG_ACT_SYSLOG] = "syslog",
	[TSG_ACT_EXEC] = "exec",
	[TSG_ACT_WEBHOOK] = "webhook",
	[TSG_ACT_DESTROY] = "destroy",
	[TSG_ACT_N] = NULL,
};

const char *tsg_action_type_name(int type)
{
	return type >= 0 && type < TSG_ACT_N ? tsg_action_type_names[type] : "?";
}

static const int sf_tf[TSG_SF_N] = {
	[TSG_SF_COMM] = TSG_TF_COMM,
	[TSG_SF_PID] = TSG_TF_PID,
	[TSG_SF_UID] = TSG_TF_UID,
	[TSG_SF_CGROUP] = TSG_TF_CGROUP,
	[TSG_SF_LADDR] = TSG_TF_LADDR,
	[TSG_SF_LPORT] = TSG_TF_LPORT,
	[TSG_SF_RADDR] = TSG_TF_RADDR,
	[TSG_SF_RPORT] = TSG_TF_RPORT,
	[TSG_SF_FAMILY] = TSG_TF_FAMILY,
	[TSG_SF_NETNS] = TSG_TF_NETNS,
	[TSG_SF_NETNS_NAME] = TSG_TF_NETNS_NAME,
	[TSG_SF_CONTAINER] = TSG_TF_CONTAINER,
	[TSG_SF_POD] = TSG_TF_POD,
};

int tsg_sfield_to_tfield(int sf)
{
	if (sf < 0 || sf >= TSG_SF_N)
		return -EINVAL;
	return sf_tf[sf];
}

int tsg_tfield_to_sfield(int tf)
{
	for (int sf = 0; sf < TSG_SF_N; sf++)
		if (sf_tf[sf] == tf)
			return sf;
	return -EINVAL;
}
