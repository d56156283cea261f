# Generates unicode-normalization.bin (embedded in Spark.Native) from Python's unicodedata.
# Format, little-endian int32: "UNRM", unidata version as 3 ints,
#   nCcc, then (cp, ccc) for every cp with ccc != 0;
#   nDecomp, then (cp, flags_len, mapping...) with flags_len = len | (1 << 31 when the mapping is compatibility);
#   nComp, then (first, second, composite) for every primary composite (canonical pair not excluded from NFC).
# Run: python3 gen_normalization.py   (Hangul syllables are algorithmic and not stored)
import struct, unicodedata

out = [0x4D524E55] + [int(x) for x in unicodedata.unidata_version.split('.')]
ccc = [(cp, unicodedata.combining(chr(cp))) for cp in range(0x110000) if unicodedata.combining(chr(cp))]
out += [len(ccc)] + [v for pair in ccc for v in pair]
decomp, comp = [], []
for cp in range(0x110000):
    if 0xAC00 <= cp <= 0xD7A3: continue
    d = unicodedata.decomposition(chr(cp))
    if not d: continue
    parts = d.split()
    compat = parts[0].startswith('<')
    if compat: parts = parts[1:]
    mapping = [int(p, 16) for p in parts]
    decomp.append([cp, len(mapping) | (1 << 31 if compat else 0)] + mapping)
    if not compat and len(mapping) == 2 and unicodedata.normalize('NFC', chr(cp)) == chr(cp):
        comp.append((mapping[0], mapping[1], cp))
out += [len(decomp)] + [v for e in decomp for v in e]
out += [len(comp)] + [v for e in comp for v in e]
with open('unicode-normalization.bin', 'wb') as f:
    f.write(struct.pack('<%dI' % len(out), *out))
print(len(ccc), len(decomp), len(comp))
