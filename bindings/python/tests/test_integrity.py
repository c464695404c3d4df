"""Model integrity: manifests made with the CLI, enforced by Model(manifest=, pubkey=)."""

import shutil
import subprocess

import pytest

import llmedge

from conftest import cli_path


def _cli(*args: str) -> None:
    subprocess.run([str(cli_path()), *args], check=True, capture_output=True)


@pytest.fixture()
def signed(tmp_path, model_path):
    model = tmp_path / "model.gguf"
    shutil.copy(model_path, model)
    manifest = tmp_path / "manifest.toml"
    key = tmp_path / "key"
    _cli("manifest", "create", str(model), "-o", str(manifest))
    _cli("manifest", "keygen", "--out", str(key))
    _cli("manifest", "sign", str(manifest), "--key", str(key))
    return model, manifest, tmp_path / "key.pub"


def test_manifest_integrity_verified_load_and_tamper(signed, tmp_path):
    model, manifest, pubkey = signed
    report = llmedge.manifest_verify(manifest, pubkey=pubkey)
    assert report["ok"] is True
    assert report["signature"]["status"] == "valid"
    with llmedge.Model(model, manifest=manifest, pubkey=pubkey, n_ctx=64) as m:
        assert m.info.n_vocab > 0

    data = bytearray(model.read_bytes())
    data[4096] ^= 1
    model.write_bytes(bytes(data))
    report = llmedge.manifest_verify(str(manifest), str(pubkey))
    assert report["ok"] is False
    assert report["files"][0]["problem"].startswith("tampered")
    audit = tmp_path / "audit"
    with pytest.raises(llmedge.ModelIntegrityError) as e:
        llmedge.Model(model, manifest=manifest, pubkey=pubkey, audit_dir=audit)
    assert e.value.code == 16
    assert "tampered" in str(e.value)
    assert llmedge.audit_verify(audit)["records"] == 1


def test_manifest_integrity_wrong_key_and_unlisted(signed, tmp_path, model_path):
    model, manifest, _ = signed
    _cli("manifest", "keygen", "--out", str(tmp_path / "other"))
    with pytest.raises(llmedge.ModelIntegrityError, match="not by the trusted key"):
        llmedge.Model(model, manifest=manifest, pubkey=tmp_path / "other.pub")
    with pytest.raises(llmedge.ModelIntegrityError, match="unlisted"):
        llmedge.Model(model_path, manifest=manifest)
    with pytest.raises(llmedge.InvalidArgumentError):
        llmedge.Model(model, pubkey=tmp_path / "other.pub")
