"""The linkage stage's settings come from the config's `linkage:` block (warehouse.identity)."""

from sources.config import load_config
from warehouse.identity import linkage_settings


def test_settings_follow_the_linkage_block(tmp_path):
    (tmp_path / "labels.csv").write_text("unique_id_l,unique_id_r,is_match\n")
    (tmp_path / "crm.csv").write_text("Id,Email\n1,a@example.org\n")
    config = tmp_path / "scv.yml"
    config.write_text(
        "sources:\n"
        "  crm: {kind: person, path: crm.csv, id: Id, columns: {email: Email}}\n"
        "linkage:\n"
        "  threshold: 0.85\n"
        "  u_max_pairs: 1000000\n"
        "  labels: labels.csv\n"
        "  guards: strict\n"
        "  engine: spark\n"
        "  spark:\n"
        "    master: local[2]\n"
        "    conf: {spark.sql.shuffle.partitions: 4, spark.ui.enabled: false}\n"
    )
    cfg = load_config(config)
    s = linkage_settings(cfg)
    assert (s.threshold, s.u_max_pairs, s.labels.name, s.guards, s.engine) == (
        0.85, 1e6, "labels.csv", "strict", "spark",
    )
    assert s.spark_master == "local[2]"
    assert s.spark_conf == {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}
    assert s.temp_directory == cfg.data_dir / "tmp" / "linkage"
    assert linkage_settings(cfg, threshold=0.9).threshold == 0.9
