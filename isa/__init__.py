"""ISA package: configuration presets, ISA/timing spec, ECC code, host map,
program image and assembler. Pure Python; everything else derives from it."""
