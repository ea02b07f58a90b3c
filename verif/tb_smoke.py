import cocotb
from isa.asm import assemble
from .chip_tb import ChipTB

@cocotb.test()
async def smoke(dut):
    tb = ChipTB(dut)
    await tb.reset()
    prog = assemble("""
.queue MEM_W0
    READ stream=1 dir=E addr=0 count=4
.queue MEM_E1
    WRITE stream=1 dir=E addr=0x10 count=4
.mem MEM_W0 addr=0
    .vec 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
    .vec 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
    .vec 20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
    .vec 30 31 32 33 34 35 36 37 38 39 3a 3b 3c 3d 3e 3f
""", tb.config)
    await tb.run_and_compare(prog)
