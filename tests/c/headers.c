/* Compiles every public header under strict C99 and C++ (make check-headers).
   The layout test against Rust comes with libivcs. */
#include "iv_cs.h"

int main(void) {
    iv_cs_init_parm_s p;
    p.channel_num = CS_CH_NUM;
    p.ch_params = 0;
    return (int)p.channel_num == CS_CH_NUM && IV_ERR_CS_NEED_IDR_FRAME == -611 ? 0 : 1;
}
