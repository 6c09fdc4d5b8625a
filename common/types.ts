/**
 * Payload types shared by workflows and activities. Pure types only: this file is imported
 * by workflow code. No payload carries bulk data or a secret: rows stay in MySQL, Kafka and
 * S3; workflows pass keys, offsets, counts and object keys.
 */

export type SystemName = 'mysql' | 'kafka' | 's3';

/** One system's answer to the doctor. */
export interface SystemCheck {
  system: SystemName;
  /** host:port or URL, never with credentials. */
  address: string;
  latencyMs: number;
  detail: string;
}

export interface DoctorReportEntry {
  system: SystemName;
  ok: boolean;
  address?: string;
  latencyMs?: number;
  detail: string;
}

export interface DoctorReport {
  ok: boolean;
  checkedAt: string;
  systems: DoctorReportEntry[];
}

/** Sizes and key range of the source tables (no rows). */
export interface SourceDescription {
  counts: Record<'pinterest_data' | 'geolocation_data' | 'user_data', number>;
  minKey: number | null;
  maxKey: number | null;
}
