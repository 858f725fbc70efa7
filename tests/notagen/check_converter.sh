#!/usr/bin/env bash
# scripts/notagen/convert_pth.py on the tiny NotaGen checkpoint (torch.save'd on the GPU machine,
# NotaGen's names, old-style causal-mask buffers included) must give the committed folder exactly;
# then the converter's refusals: a file that is no checkpoint, a state dict that is not NotaGen's.
set -euo pipefail
src=$1 out=$2
fx=$src/tests/fixtures/notagen
rm -rf "$out" && mkdir -p "$out"
python3 "$src/scripts/notagen/convert_pth.py" "$fx/tiny_notagen.pth" "$out/tiny" --heads 4
cmp "$out/tiny/model.safetensors" "$fx/tiny/model.safetensors"
cmp "$out/tiny/config.json" "$fx/tiny/config.json"
echo "converted folder identical to tests/fixtures/notagen/tiny"
echo "not a checkpoint" > "$out/bad.pth"
if python3 "$src/scripts/notagen/convert_pth.py" "$out/bad.pth" "$out/bad" 2> "$out/bad.err"; then
  echo "a text file was accepted as a checkpoint"; exit 1
fi
grep -q "not a torch zip checkpoint" "$out/bad.err" || { cat "$out/bad.err"; exit 1; }
if python3 "$src/scripts/notagen/convert_pth.py" "$fx/tiny_notagen.pth" "$out/bad2" --key epoch 2> "$out/bad2.err"; then
  echo "an entry without tensors was accepted"; exit 1
fi
grep -q "convert_pth:" "$out/bad2.err" || { cat "$out/bad2.err"; exit 1; }
echo "refusals ok"
