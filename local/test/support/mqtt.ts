/** MQTT.js helpers shared by the IoT test files. */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** The CONNACK refusal MQTT.js reports: 5 (3.1.1 "not authorized") or 135 (MQTT 5 0x87). */
export class ConnectRefused extends Error {
  constructor(readonly code: number | undefined) {
    super(`CONNECT refused with ${code}`);
  }
}

/** Opens an MQTT.js client; resolves once connected, rejects with {@link ConnectRefused} on a refusal. */
export function connectMqtt(url: string, options: IClientOptions, opened: MqttClient[]): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    // No reconnects: a refused client must stay refused so the test sees the CONNACK code.
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
    opened.push(client);
    client.once('connect', () => resolve(client));
    client.once('error', (error) => reject(new ConnectRefused((error as { code?: number }).code)));
    client.once('close', () => reject(new ConnectRefused(undefined)));
  });
}
