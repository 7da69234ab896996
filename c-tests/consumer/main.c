/* Links against sshbridge and makes one call that needs no server: a NULL address must
 * fail cleanly with a message. Exit 0 on the expected behaviour. */
#include <stdio.h>
#include <string.h>

#include <dropbear.h>

int main(void)
{
    cyg_dropbear_cli_handle h;
    cyg_dropbear_authenticate auth;
    memset(&auth, 0, sizeof auth);
    auth.db_username = "nobody";
    if (cyg_dropbear_ssh_connect(&h, NULL, &auth, "true") != 0 || h.db_error[0] == '\0') {
        fprintf(stderr, "consumer: unexpected connect result\n");
        return 1;
    }
    cyg_dropbear_ssh_close(&h, 1);
    printf("consumer: linked OK; connect(NULL addr) -> 0, \"%s\"\n", h.db_error);
    return 0;
}
