/* Consumer of an installed cnet: built by test/install/run.sh against a
 * temporary prefix, once through pkg-config and once through
 * find_package(cnet). It only proves the header, the library and the
 * package files work from outside the tree; no network is used. */
#include <cnet.h>

#include <stdio.h>

static int check(const char *s, int want) {
  int got = cnet_is_ip(s);
  if (got != want) {
    fprintf(stderr, "cnet_is_ip(\"%s\") = %d, want %d\n", s, got, want);
    return 1;
  }
  return 0;
}

int main(void) {
  int failed = 0;
  failed |= check("127.0.0.1", 4);
  failed |= check("::1", 6);
  if (failed)
    return 1;
  puts("install ok");
  return 0;
}
