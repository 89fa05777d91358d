#!/usr/bin/perl
# launch.pl - rewrite CUDA launches for the emulator (tests/emu/README.md):
#   kernel<<<grid, block[, smem[, stream]]>>>(args)
#   -> tseal_emu_launch(kernel, tseal_emu_config(grid, block[, smem[, stream]]), "kernel")(args)
# Usage: launch.pl SOURCE.cu > OUT.cpp (a #line directive keeps diagnostics on SOURCE.cu).
use strict;
use warnings;
my $src = shift or die "usage: launch.pl SOURCE.cu\n";
open(my $fh, '<', $src) or die "launch.pl: $src: $!\n";
local $/;
my $text = <$fh>;
close $fh;
my $n = ($text =~ s{([A-Za-z_]\w*(?:<[^<>;(){}]*>)?)\s*<<<(.*?)>>>\s*\(}
                   {tseal_emu_launch($1, tseal_emu_config($2), "$1")(}gs);
die "launch.pl: $src: a '<<<' was left unrewritten\n" if $text =~ /<<</;
print "#line 1 \"$src\"\n", $text;
