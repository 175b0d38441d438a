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

#define SF_TF(e, n) [TSG_SF_##e] = TSG_TF_##e,
static const int sf_tf[TSG_SF_N] = { TSG_SFIELDS(SF_TF) };

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
