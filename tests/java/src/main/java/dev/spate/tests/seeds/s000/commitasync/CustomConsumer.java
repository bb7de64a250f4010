package dev.spate.tests.seeds.s000.commitasync;

// Seed 000_0cefd7d9b9e13ee0.txt, "异步提交offset" (the consumer with commitAsync), as written. The
// same commitAsync callback is seed 004_ed286137ca3470b0.txt's "手动提交offset" fragment. Changes:
// the bootstrap address and the topic come from args[0] and args[1] (the seed has
// "hadoop102:9092" and "first"); poll(100) is poll(Duration.ofMillis(100)) because
// kafka-clients 4.0 removed poll(long); the endless loop ends when the checks ask (see Stop) and
// the consumer is then closed.
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;

import dev.spate.tests.seeds.Stop;

import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Properties;

/**
 * @author liubo
 */
public class CustomConsumer {

    public static void main(String[] args) {

        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);//Kafka集群
        props.put("group.id", "test");//消费者组，只要group.id相同，就属于同一个消费者组
        props.put("enable.auto.commit", "false");//关闭自动提交offset
        props.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");

        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        consumer.subscribe(Arrays.asList(args[1]));//消费者订阅主题

        while (!Stop.requested()) {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));//消费者拉取数据
            for (ConsumerRecord<String, String> record : records) {
                System.out.printf("offset = %d, key = %s, value = %s%n", record.offset(), record.key(), record.value());
            }
            consumer.commitAsync(new OffsetCommitCallback() {
                @Override
                public void onComplete(Map<TopicPartition, OffsetAndMetadata> offsets, Exception exception) {
                    if (exception != null) {
                        System.err.println("Commit failed for" + offsets);
                    }
                }
            });//异步提交
        }
        consumer.close();
    }
}
