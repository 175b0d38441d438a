/* SPDX-License-Identifier: MIT */
/* tsguard: unit tests' helper: a rule set from YAML text, loaded by the real
 * loader (include after cmocka.h). */
#ifndef TSG_TEST_YAML_RULES_H
#define TSG_TEST_YAML_RULES_H

#include "ruleset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct tsg_ruleset *load(const char *yaml)
{
	char path[] = "/tmp/tsg-test-rules-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;
	const char *paths[1] = {path};

	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	tsg_diags_init(&d);
	if (tsg_ruleset_load(paths, 1, false, &d, &rs) < 0)
		tsg_diags_print(&d, stderr);
	tsg_diags_fini(&d);
	unlink(path);
	assert_non_null(rs);
	return rs;
}

#endif
