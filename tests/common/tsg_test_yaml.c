/* SPDX-License-Identifier: MIT */
#include "tsg_test_yaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int tsg_test_yaml_load(const char *yaml, bool as_root, struct tsg_diags *d, struct tsg_ruleset **rs,
		       char *path)
{
	char name[TSG_TEST_YAML_PATH] = "/tmp/tsg-test-XXXXXX.yaml";
	const char *paths[1] = {name};
	int fd = mkstemps(name, 5);
	int err;

	if (fd < 0)
		return -errno;
	err = write_all(fd, yaml, strlen(yaml));
	if (!err && fchmod(fd, 0644) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (path)
		memcpy(path, name, sizeof(name));
	if (!err)
		err = tsg_ruleset_load(paths, 1, as_root, d, rs);
	unlink(name);
	return err;
}

struct tsg_ruleset *tsg_test_yaml_rules(const char *yaml)
{
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;
	int err;

	tsg_diags_init(&d);
	err = tsg_test_yaml_load(yaml, false, &d, &rs, NULL);
	if (err < 0) {
		tsg_diags_print(&d, stderr);
		fprintf(stderr, "load failed: %s\nrules:\n%s\n", strerror(-err), yaml);
		rs = NULL;
	}
	tsg_diags_fini(&d);
	return rs;
}
