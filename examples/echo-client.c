/* The net.createConnection() example of Node's docs, in C:
 *
 *   const client = net.createConnection({ port: 8124 }, () => {
 *     console.log('connected to server!');
 *     client.write('world!\r\n');
 *   });
 *   client.on('data', (data) => {
 *     console.log(data.toString());
 *     client.end();
 *   });
 *   client.on('end', () => console.log('disconnected from server'));
 *
 * Usage: echo-client [PORT|PATH]: a number is a TCP port on localhost,
 * anything else a Unix socket path; 8124 by default. */
#include <cnet.h>

#include <stdio.h>
#include <stdlib.h>

static int status = 1;

static void on_client(cnet_socket_t *client, const cnet_event_t *ev,
                      void *ctx) {
  (void)ctx;
  switch (ev->type) {
  case CNET_EV_CONNECT:
    puts("connected to server!");
    cnet_socket_write(client, "world!\r\n", 8, NULL, NULL);
    break;
  case CNET_EV_DATA:
    printf("%.*s\n", (int)ev->data.len, ev->data.base);
    cnet_socket_end(client, NULL, 0, NULL, NULL);
    break;
  case CNET_EV_END:
    puts("disconnected from server");
    status = 0;
    break;
  case CNET_EV_ERROR:
    fprintf(stderr, "%s\n", ev->error->message);
    break;
  default:
    break;
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *where = argc > 1 ? argv[1] : "8124";
  cnet_connect_options_t opts = {0};
  char *end;
  long port = strtol(where, &end, 10);
  cnet_socket_t *client;

  if (*where != '\0' && *end == '\0')
    opts.port = (int)port;
  else
    opts.path = where;
  client = cnet_create_connection(NULL, &opts, on_client, NULL);
  if (client == NULL) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    return 1;
  }
  cnet_socket_on(client, CNET_EV_DATA, on_client, NULL);
  cnet_socket_on(client, CNET_EV_END, on_client, NULL);
  cnet_socket_on(client, CNET_EV_ERROR, on_client, NULL);
  cnet_run();
  return uv_loop_close(uv_default_loop()) == 0 ? status : 1;
}
