/* Compiles every public header under strict C99 and C++ (make check-headers).
   Layouts are compared with libivcs's Rust types by tests/c/layout.c
   (make check-layout). */
#include "iv_cs.h"
#include "ivcs_host.h"

static void on_log(int level, const char *message, void *user) {
    (void)level;
    (void)message;
    (void)user;
}

int main(void) {
    iv_cs_init_parm_s p;
    ivcs_host_log_cb cb = on_log;
    p.channel_num = CS_CH_NUM;
    p.ch_params = 0;
    (void)cb;
    return (int)p.channel_num == CS_CH_NUM && IV_ERR_CS_NEED_IDR_FRAME == -611 &&
                   IVCS_LOG_TRACE == 4
               ? 0
               : 1;
}
