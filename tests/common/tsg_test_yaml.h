/* SPDX-License-Identifier: MIT */
/*
 * "Load this YAML" for the C tests and benches: the rule text goes to a
 * temporary file, through the real loader (tsg_ruleset_load), and the file
 * is removed again. No test framework here (the benches use it too).
 */
#ifndef TSG_TEST_YAML_H
#define TSG_TEST_YAML_H

#include <stdbool.h>

#include "ruleset.h"

/* Room for the temporary file's name (see tsg_test_yaml_load). */
#define TSG_TEST_YAML_PATH 64

/*
 * Writes yaml to a new file /tmp/tsg-test-XXXXXX.yaml (mode 0644), loads it
 * (as_root as tsg_ruleset_load takes it) into *rs with the diagnostics in d
 * (initialised by the caller) and removes the file. path, when not NULL
 * (TSG_TEST_YAML_PATH bytes), receives the file's name as the diagnostics
 * give it. Returns the loader's result, or -errno when the file cannot be
 * written.
 */
int tsg_test_yaml_load(const char *yaml, bool as_root, struct tsg_diags *d, struct tsg_ruleset **rs,
		       char *path);

/*
 * The common case: loads yaml (not as root). On any error it prints the
 * diagnostics and the YAML to stderr and returns NULL, for the caller to
 * assert on.
 */
struct tsg_ruleset *tsg_test_yaml_rules(const char *yaml);

#endif
