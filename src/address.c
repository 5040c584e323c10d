/* Addresses as Node shows them: sockaddr to text/port/family, IP literals to
 * sockaddr, and the checks a Unix socket path must pass. */
#include "internal.h"

#include <stdio.h>
#include <sys/un.h>

const char *cnet_family_name(int family) {
  return family == 4 ? "IPv4" : family == 6 ? "IPv6" : NULL;
}

void cnet__address_from_sockaddr(cnet_address_t *out,
                                 const struct sockaddr *sa) {
  memset(out, 0, sizeof(*out));
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, out->address, sizeof(out->address));
    out->port = ntohs(in6->sin6_port);
    out->family = 6;
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
    uv_ip4_name(in4, out->address, sizeof(out->address));
    out->port = ntohs(in4->sin_port);
    out->family = 4;
  }
  out->address_len = strlen(out->address);
}

int cnet__sockaddr_from_ip(cnet__sockaddr_t *out, const char *ip, int port) {
  memset(out, 0, sizeof(*out));
  switch (cnet_is_ip(ip)) {
  case 4:
    return uv_ip4_addr(ip, port, &out->in4);
  case 6:
    return uv_ip6_addr(ip, port, &out->in6); /* keeps a %zone as scope id */
  default:
    return UV_EINVAL;
  }
}

/* Node v20 silently truncates a path longer than sun_path and binds a
 * different name; cnet refuses instead (DESIGN: safe where Node is not).
 * A file name needs room for its NUL; an abstract name (a leading NUL byte,
 * Linux) is its bytes exactly and may fill sun_path. */
int cnet__check_pipe_path(const char *path, size_t len) {
  struct sockaddr_un un;

  if (path == NULL || len == 0)
    return UV_EINVAL;
  if (path[0] == '\0')
    return len > sizeof(un.sun_path) ? UV_ENAMETOOLONG : 0;
  if (len >= sizeof(un.sun_path))
    return UV_ENAMETOOLONG;
  if (memchr(path, '\0', len) != NULL)
    return UV_EINVAL; /* the kernel would stop at the NUL: another name */
  return 0;
}

/* A path fit for a C string: an abstract name's NUL bytes become '@', as
 * ss(8) shows them. out has CNET_ADDR_MAX bytes; len fits (checked). */
void cnet__pipe_display(char *out, const char *path, size_t len) {
  size_t i;

  for (i = 0; i < len && i < CNET_ADDR_MAX - 1; i++)
    out[i] = path[i] != '\0' ? path[i] : '@';
  out[i] = '\0';
}

/* Node's family argument of SocketAddress and BlockList: 'ipv4' (0 or 4,
 * the default) or 'ipv6' (6). 0 if invalid. */
int cnet__family_arg(int family) {
  return family == 0 || family == 4 ? 4 : family == 6 ? 6 : 0;
}

/* new SocketAddress({address, family})'s reading of text: libuv's parser
 * (what Node's C++ calls). For IPv6, uv_ip6_addr() copies the part before a
 * "%zone" into a 40-byte buffer, silently cutting a longer one, and ignores
 * the zone (an unknown interface is no error); Node inherits both, and so
 * does cnet -- without the interface lookup, a syscall whose answer
 * SocketAddress never shows. Writes 4 or 16 bytes; false if text is not an
 * address of the family. */
bool cnet__ip_pton(int family, const char *text, unsigned char *out) {
  char part[CNET__IP6_PART_MAX];
  const char *zone;

  if (family == 4)
    return uv_inet_pton(AF_INET, text, out) == 0;
  if ((zone = strchr(text, '%')) != NULL) {
    size_t n = (size_t)(zone - text);

    if (n >= sizeof(part))
      n = sizeof(part) - 1; /* uv_ip6_addr's buffer: the text is cut */
    memcpy(part, text, n);
    part[n] = '\0';
    text = part;
  }
  return uv_inet_pton(AF_INET6, text, out) == 0;
}
